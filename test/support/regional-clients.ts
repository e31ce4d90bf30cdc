import type { KMSClient } from '@aws-sdk/client-kms';
import { serverPerSuite, type TestServer } from './server';

/** The account a TestServer's SDK clients act in (the service's default account). */
export const ACCOUNT = '111122223333';

/**
 * Registers before/after hooks in the calling describe: a server of the suite's own, and
 * `kms(region)`, one SDK client per region, made when a test first asks for it. Keys and
 * aliases are regional, so each region is an account of its own.
 */
export function serverWithRegionalClients(): (region?: string) => KMSClient {
  let server: TestServer;
  const clients = new Map<string, KMSClient>();

  // Registered first, so that the clients are gone before the server stops.
  after(() => clients.forEach((client) => client.destroy()));
  serverPerSuite({}, (started) => (server = started));

  return function kms(region = 'us-east-1'): KMSClient {
    let client = clients.get(region);
    if (!client) {
      client = server.client({ region });
      clients.set(region, client);
    }
    return client;
  };
}

/** Every item of a paged listing (ListKeys, ListAliases), following NextMarker page by page. */
export async function followMarkers<T>(
  operation: string,
  page: (marker: string | undefined) => Promise<{ items?: T[]; Truncated?: boolean; NextMarker?: string }>,
): Promise<T[]> {
  const all: T[] = [];
  let marker: string | undefined;
  for (let n = 0; n < 100; n++) {
    const out = await page(marker);
    all.push(...(out.items ?? []));
    if (!out.Truncated) return all;
    marker = out.NextMarker;
  }
  throw new Error(`${operation} never stopped paging`);
}

/**
 * Regions no test names itself (the tests name us-east-1, us-west-2, eu-west-1 and
 * eu-central-1), for the tests that count what a region holds: on a suite's own server, a
 * region nobody has used yet is an empty account.
 */
const FRESH_REGIONS = [
  'ap-south-1',
  'ap-south-2',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-southeast-3',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-northeast-3',
  'ca-central-1',
  'sa-east-1',
  'me-south-1',
  'af-south-1',
  'eu-north-1',
  'eu-south-1',
  'il-central-1',
  'us-east-2',
  'us-west-1',
  'eu-west-2',
  'eu-west-3',
  'eu-central-2',
  'eu-south-2',
  'me-central-1',
  'ca-west-1',
  'ap-east-1',
  'ap-southeast-4',
  'mx-central-1',
];

/** Hands out those regions one per call; one sequence per suite, since each suite has its own server. */
export function freshRegions(): () => string {
  let next = 0;
  return function freshRegion(): string {
    const region = FRESH_REGIONS[next++];
    if (region === undefined) throw new Error('the suite ran out of fresh regions');
    return region;
  };
}
