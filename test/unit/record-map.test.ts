/**
 * The JSON store's record maps: a batch changes a copy while readers keep the committed map, so
 * a copy and its original must never see each other's changes, whichever of them writes first.
 */
import { expect } from 'chai';
import { RecordMap } from '../../src/store/json/record-map';

const names = Array.from({ length: 5_000 }, (_, i) => `us-east-1/${i.toString(16).padStart(8, '0')}-key`);

function contents(map: RecordMap<number>): Map<string, number> {
  return new Map([...map.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

describe('RecordMap', function () {
  it('holds what a Map holds: get, has, size and every entry once, across sets, overwrites and deletes', function () {
    const map = RecordMap.of<number>();
    const reference = new Map<string, number>();
    names.forEach((name, i) => (map.set(name, i), reference.set(name, i)));
    names.filter((_, i) => i % 3 === 0).forEach((name) => (map.set(name, -1), reference.set(name, -1)));
    names.filter((_, i) => i % 7 === 0).forEach((name) => expect(map.delete(name)).to.equal(reference.delete(name)));
    expect(map.delete('us-east-1/never-there')).to.equal(false);
    expect(map.size).to.equal(reference.size);
    expect(contents(map)).to.deep.equal(new Map([...reference].sort(([a], [b]) => a.localeCompare(b))));
    expect([...map.values()].length).to.equal(reference.size);
    for (const name of names.slice(0, 50)) {
      expect(map.get(name)).to.equal(reference.get(name));
      expect(map.has(name)).to.equal(reference.has(name));
    }
  });

  it("a copy's writes leave the original as it was, and the original's leave the copy", function () {
    const committed = RecordMap.of<number>(names.map((name, i) => [name, i]));
    const before = contents(committed);
    const working = committed.copy();
    working.set(names[0], 100);
    working.delete(names[1]);
    working.set('us-east-1/new-key', 7);
    expect(contents(committed), 'the committed map, read while the batch is written').to.deep.equal(before);
    expect(committed.size).to.equal(names.length);
    expect(working.get(names[0])).to.equal(100);
    expect(working.has(names[1])).to.equal(false);
    expect(working.size).to.equal(names.length);

    // A second copy of the (unchanged) committed map, then a write to the original itself.
    const again = committed.copy();
    committed.set(names[2], -2);
    expect(again.get(names[2]), 'a copy taken before the original changed').to.equal(2);
    expect(working.get(names[2])).to.equal(2);
    expect(committed.get(names[2])).to.equal(-2);
  });

  it('copies of copies stay apart: each batch starts from the last committed map', function () {
    let committed = RecordMap.of<number>(names.map((name, i) => [name, i]));
    const snapshots: Array<Map<string, number>> = [];
    for (let batch = 0; batch < 20; batch++) {
      const kept = committed;
      snapshots.push(contents(kept));
      const working = committed.copy();
      for (let i = 0; i < 50; i++) working.set(names[(batch * 97 + i * 31) % names.length], batch * 1000 + i);
      committed = working;
      expect(contents(kept), `batch ${batch}'s base after the batch`).to.deep.equal(snapshots[batch]);
    }
  });
});
