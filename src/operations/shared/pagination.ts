import { KmsError } from '../../errors';

/**
 * AWS-style Limit/Marker paging over a stable, sorted list. The marker is opaque to
 * clients: the base64url of the last item's id.
 */
export function paginate<T>(
  items: T[],
  idOf: (item: T) => string,
  limit: number | undefined,
  marker: string | undefined,
  defaultLimit = 100,
): { page: T[]; NextMarker?: string; Truncated: boolean } {
  let start = 0;
  if (marker !== undefined) {
    const lastId = decodeMarker(marker);
    const index = items.findIndex((item) => idOf(item) === lastId);
    if (index < 0) throw new KmsError('InvalidMarkerException', 'The marker is not valid for this request.');
    start = index + 1;
  }
  const size = limit ?? defaultLimit;
  const page = items.slice(start, start + size);
  const truncated = start + size < items.length;
  return truncated
    ? { page, NextMarker: Buffer.from(idOf(page[page.length - 1]), 'utf8').toString('base64url'), Truncated: true }
    : { page, Truncated: false };
}

function decodeMarker(marker: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(marker)) throw new KmsError('InvalidMarkerException', 'The marker is not valid for this request.');
  return Buffer.from(marker, 'base64url').toString('utf8');
}
