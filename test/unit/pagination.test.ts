/**
 * Limit/Marker paging: a list pages alike whether the store handed it over in order (the page
 * is then cut from it as it is) or in any other order (sorted first).
 */
import { expect } from 'chai';
import { listOrder, paginate } from '../../src/operations/shared/pagination';

interface Item {
  createdAt: number;
  id: string;
}

const ORDER = listOrder(['number', 'string'], (i: Item) => [i.createdAt, i.id]);

// 250 items, several created in one millisecond (ties go by id).
const inOrder: Item[] = Array.from({ length: 250 }, (_, n) => ({ createdAt: 1_000 + Math.floor(n / 3), id: `key-${String((n * 7919) % 1000).padStart(4, '0')}` })).sort(
  (a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1),
);

function shuffled(items: readonly Item[]): Item[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = (i * 104_729) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Every page from the first, following NextMarker. */
function pages(items: readonly Item[], limit: number): Item[][] {
  const out: Item[][] = [];
  let marker: string | undefined;
  for (;;) {
    const { page, NextMarker, Truncated } = paginate('ListKeys', items, ORDER, { Limit: limit, ...(marker ? { Marker: marker } : {}) });
    out.push(page);
    if (!Truncated) return out;
    expect(NextMarker).to.be.a('string');
    marker = NextMarker;
  }
}

describe('paginate', function () {
  it('pages a list handed over in order and the same list in another order alike: every item once, in order', function () {
    const fromOrdered = pages(inOrder, 100);
    const fromShuffled = pages(shuffled(inOrder), 100);
    expect(fromShuffled.map((p) => p.length)).to.deep.equal([100, 100, 50]);
    expect(fromShuffled).to.deep.equal(fromOrdered);
    expect(fromOrdered.flat()).to.deep.equal(inOrder);
  });

  it('goes on after the item a marker names even once that item is gone, in either order', function () {
    const first = paginate('ListKeys', inOrder, ORDER, { Limit: 10 });
    const named = first.page[9]!;
    const without = inOrder.filter((i) => i !== named);
    for (const items of [without, shuffled(without)]) {
      const next = paginate('ListKeys', items, ORDER, { Limit: 10, Marker: first.NextMarker });
      expect(next.page).to.deep.equal(inOrder.slice(10, 20));
    }
  });
});
