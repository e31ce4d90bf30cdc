import { expect } from 'chai';
import { isUnfinished, objectFileState, withTokenFlag } from '../../src/custody/softhsm2-files';
import { objectFile } from '../support/softhsm2-object-file';

describe('SoftHSM2 object files a crash left unfinished', () => {
  const secretKey = objectFile([
    [0, 2, 4],
    [1, 1, true],
    [3, 3, Buffer.from('p11kms:key:v1')],
    [0x11, 3, Buffer.alloc(48, 7)],
    [0x102, 3, Buffer.from('p11kms#00')],
  ]);

  it('keeps a finished key object and recognises empty, cut-off and valueless ones', () => {
    expect(isUnfinished(secretKey)).to.equal(false);
    expect(isUnfinished(Buffer.alloc(0)), 'empty').to.equal(true);
    expect(isUnfinished(Buffer.alloc(8)), 'generation only').to.equal(true);
    for (const cut of [20, 40, 60, secretKey.length - 1]) expect(isUnfinished(secretKey.subarray(0, cut)), `cut at ${cut}`).to.equal(true);
    const withoutValue = objectFile([
      [0, 2, 4],
      [3, 3, Buffer.from('p11kms:key:v1')],
      [0x102, 3, Buffer.from('p11kms#00')],
    ]);
    expect(isUnfinished(withoutValue), 'template written, key value not yet').to.equal(true);
  });

  it('recognises a key object a crash left with SoftHSM2\'s defaults, or with the session attributes a copy starts from (CKA_TOKEN false)', () => {
    // Seen after kill -9 in crash-recovery: class set, every other attribute still the default.
    const defaultsOnly = objectFile([
      [0, 2, 4],
      [1, 1, false],
      [2, 1, true],
      [3, 3, Buffer.alloc(0)],
      [0x11, 3, Buffer.alloc(0)],
      [0x102, 3, Buffer.alloc(0)],
      [0x170, 1, true],
    ]);
    expect(isUnfinished(defaultsOnly), 'defaults only').to.equal(true);
    const copiedNotYetNamed = objectFile([
      [0, 2, 4],
      [1, 1, false],
      [3, 3, Buffer.alloc(0)],
      [0x11, 3, Buffer.alloc(48, 7)],
    ]);
    expect(isUnfinished(copiedNotYetNamed), 'C_CopyObject into the token, template not yet applied').to.equal(true);
    const emptyValueOnToken = objectFile([
      [0, 2, 4],
      [1, 1, true],
      [3, 3, Buffer.from('p11kms:key:v1')],
      [0x11, 3, Buffer.alloc(0)],
    ]);
    expect(isUnfinished(emptyValueOnToken), 'template applied, key value still the empty default').to.equal(true);
  });

  it('tells a whole key not marked as a token object (set aside) from one a crash cut short (removed)', () => {
    const unmarked = withTokenFlag(secretKey, false)!;
    expect(objectFileState(unmarked)).to.equal('unmarked key');
    expect(objectFileState(withTokenFlag(unmarked, true)!)).to.equal('finished');
    expect(objectFileState(objectFile([[0, 2, 4], [1, 1, false], [0x11, 3, Buffer.alloc(0)]])), 'defaults only').to.equal('unfinished');
    expect(withTokenFlag(objectFile([[0, 2, 4], [0x11, 3, Buffer.alloc(48, 7)]]), true), 'no CKA_TOKEN record').to.equal(undefined);
  });

  it('keeps objects it has no rule for (data objects, certificates)', () => {
    expect(isUnfinished(objectFile([[0, 2, 0], [3, 3, Buffer.from('a data object')]]))).to.equal(false);
  });
});
