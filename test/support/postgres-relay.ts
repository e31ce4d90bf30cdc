import * as net from 'node:net';

/**
 * A TCP relay in front of a PostgreSQL server that reads the client's side of the protocol,
 * for the failures of connections nothing else produces on demand:
 *
 * - `cut()`: every relayed connection's server side is dropped at once, and the client side
 *   answers the next bytes the client sends with a reset (ECONNRESET): a failover behind one
 *   address, or a firewall that forgot an idle connection and rejects it.
 * - `blackhole(statement)`: the open connections whose client sent that statement (e.g. the
 *   change feed's `LISTEN p11kms_changes`) stop carrying anything, either way, and neither
 *   side is closed: a NAT or firewall that forgot the connection, or a database host lost
 *   without a FIN or reset reaching the client. New connections are relayed as before.
 * - `cutAfterCommit(marker)`: the COMMIT of the next transaction whose messages contain
 *   `marker` (a statement's text or a parameter's value) is delivered to the server, the
 *   server's answer to it is swallowed, and then both sides are cut (the client's with a
 *   reset): the one moment where the client cannot know whether its transaction committed.
 * - `cutBeforeCommit(marker)`: the same moment seen from the client, but the COMMIT never
 *   reaches the server: both sides are cut as it is sent, and the server, finding its client
 *   gone, aborts the transaction.
 * - `refuse(true)`: new connections are reset as soon as they are made (a database out of
 *   reach), until `refuse(false)`.
 */
export interface PostgresRelay {
  url: string;
  /** Cuts every open relayed connection; returns how many. New connections are relayed as before. */
  cut(): number;
  /**
   * Blackholes every open connection whose client sent `statement` (as a simple query or a
   * parsed one), or whose statements `statement` accepts; returns how many.
   */
  blackhole(statement: string | ((statements: ReadonlySet<string>) => boolean)): number;
  /** How many times clients sent `statement` through the relay (to the server: not into a blackhole), over every connection. */
  sent(statement: string): number;
  /**
   * Arms the cut; resolves, once it happened, with the server's answer that was swallowed
   * (PostgreSQL's CommandComplete for a commit that took effect names `COMMIT`).
   */
  cutAfterCommit(marker: string): Promise<{ answer: Buffer }>;
  /** Arms the cut that swallows the COMMIT; resolves once it happened. */
  cutBeforeCommit(marker: string): Promise<void>;
  /** Resets every new connection from now on (`true`), or relays them again (`false`). */
  refuse(refusing: boolean): void;
  close(): Promise<void>;
}

/** The statement text of a Parse message (extended protocol): after the statement's name. */
function parsedStatement(body: Buffer): string | undefined {
  const nameEnd = body.indexOf(0);
  const textEnd = nameEnd < 0 ? -1 : body.indexOf(0, nameEnd + 1);
  return textEnd < 0 ? undefined : body.subarray(nameEnd + 1, textEnd).toString();
}

/** SSLRequest and GSSENCRequest: answered with one byte, then the real startup message comes. */
const ENCRYPTION_REQUESTS = new Set([80877103, 80877104]);

/**
 * Splits what a client sends into whole protocol messages: first the startup message (a
 * length, no type byte), then a type byte and a length each.
 */
class FrontendMessages {
  private pending = Buffer.alloc(0);
  private started = false;

  push(chunk: Buffer): { type: string; raw: Buffer; body: Buffer }[] {
    this.pending = Buffer.concat([this.pending, chunk]);
    const messages: { type: string; raw: Buffer; body: Buffer }[] = [];
    for (;;) {
      const header = this.started ? 5 : 4;
      if (this.pending.length < header) break;
      const length = this.started ? this.pending.readInt32BE(1) + 1 : this.pending.readInt32BE(0);
      if (this.pending.length < length) break;
      const raw = this.pending.subarray(0, length);
      this.pending = this.pending.subarray(length);
      messages.push({ type: this.started ? String.fromCharCode(raw[0]) : '', raw, body: raw.subarray(header) });
      if (!this.started && !ENCRYPTION_REQUESTS.has(raw.readInt32BE(4))) this.started = true;
    }
    return messages;
  }
}

interface Relayed {
  client: net.Socket;
  server: net.Socket;
  /** The distinct statement texts the client sent, simple or parsed (a few: BEGIN…, COMMIT, LISTEN…, SELECT pg_try_advisory_lock($1)…). */
  statements: Set<string>;
  /** relaying; blackholed (nothing passes, nothing closes); cut (the client's next bytes are reset). */
  state: 'relaying' | 'blackholed' | 'cut';
}

export async function postgresRelay(databaseUrl: string): Promise<PostgresRelay> {
  const target = new URL(databaseUrl);
  /** Connections relaying or blackholed; and every one not closed yet, for close(). */
  const open = new Set<Relayed>();
  const unclosed = new Set<net.Socket>();
  const sentCounts = new Map<string, number>();
  /** The cut armed: `swallow`, the COMMIT is not delivered (the server aborts); otherwise its answer is not. */
  let armed: { marker: Buffer; swallow: boolean; done(answer: Buffer): void } | undefined;

  let refusing = false;

  const relay = net.createServer((client) => {
    if (refusing) {
      client.resetAndDestroy();
      return;
    }
    const server = net.connect(Number(target.port), target.hostname);
    const relayed: Relayed = { client, server, statements: new Set(), state: 'relaying' };
    open.add(relayed);
    unclosed.add(client);
    const messages = new FrontendMessages();
    /** The armed cut, once this connection's transaction carried its marker. */
    let marked: typeof armed;
    /** The cut under way: the COMMIT went to the server, whose answer ends the connection. */
    let cutting: typeof armed;

    client.on('data', (chunk: Buffer) => {
      if (relayed.state === 'cut') client.resetAndDestroy();
      if (relayed.state !== 'relaying' || cutting) return;
      for (const message of messages.push(chunk)) {
        const query = message.type === 'Q' ? message.body.subarray(0, message.body.length - 1).toString() : undefined;
        if (query !== undefined && relayed.statements.size < 100) relayed.statements.add(query);
        const parsed = message.type === 'P' ? parsedStatement(message.body) : undefined;
        if (parsed !== undefined && relayed.statements.size < 100) relayed.statements.add(parsed);
        const statement = query ?? parsed;
        if (statement !== undefined) sentCounts.set(statement, (sentCounts.get(statement) ?? 0) + 1);
        if (query !== undefined && /^BEGIN\b/i.test(query)) marked = undefined;
        if (armed && message.raw.includes(armed.marker)) marked = armed;
        if (marked?.swallow && query === 'COMMIT') {
          const swallowing = marked;
          armed = undefined;
          open.delete(relayed);
          server.destroy();
          client.resetAndDestroy();
          swallowing.done(message.raw);
          return;
        }
        server.write(message.raw);
        if (marked && query === 'COMMIT') {
          cutting = marked;
          marked = undefined;
          armed = undefined;
          return;
        }
      }
    });
    server.on('data', (chunk: Buffer) => {
      if (relayed.state !== 'relaying') return;
      if (!cutting) {
        client.write(chunk);
        return;
      }
      open.delete(relayed);
      server.destroy();
      client.resetAndDestroy();
      cutting.done(chunk);
    });
    const drop = () => {
      open.delete(relayed);
      unclosed.delete(client);
      client.destroy();
      server.destroy();
    };
    client.on('error', drop).on('close', drop);
    // A cut connection's server side goes first, its client side stays until it sends; a
    // blackholed one's client never hears the server go (pg_terminate_backend behind a silent
    // network): it stays open until the client gives up on it.
    server.on('error', () => relayed.state === 'relaying' && drop()).on('close', () => relayed.state === 'relaying' && drop());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.port = String((relay.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    cut() {
      const relaying = [...open].filter((r) => r.state === 'relaying');
      for (const r of relaying) {
        r.state = 'cut';
        open.delete(r);
        r.server.destroy();
      }
      return relaying.length;
    },
    blackhole(statement) {
      const chosen = [...open].filter((r) => r.state === 'relaying' && (typeof statement === 'string' ? r.statements.has(statement) : statement(r.statements)));
      for (const r of chosen) r.state = 'blackholed';
      return chosen.length;
    },
    sent: (statement) => sentCounts.get(statement) ?? 0,
    cutAfterCommit(marker) {
      if (armed) throw new Error('a cut is armed already');
      return new Promise((resolve) => {
        armed = { marker: Buffer.from(marker), swallow: false, done: (answer) => resolve({ answer }) };
      });
    },
    refuse(on) {
      refusing = on;
    },
    cutBeforeCommit(marker) {
      if (armed) throw new Error('a cut is armed already');
      return new Promise((resolve) => {
        armed = { marker: Buffer.from(marker), swallow: true, done: () => resolve() };
      });
    },
    async close() {
      for (const { server } of open) server.destroy();
      for (const client of unclosed) client.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    },
  };
}
