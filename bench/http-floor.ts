/**
 * The HTTP floor: what one (or two) bare Node HTTP processes answer on this machine, with the
 * same load generator and the same request bytes as the service's rows, doing no work but
 * reading the body, parsing its JSON and sending a fixed answer of the service's size. No
 * SigV4, no validation, no token, no store, no audit. It bounds what any Node front end could
 * reach here, and so what the service's rows can be compared against.
 *
 * Run as a child: `node http-floor.js <processes> <answer file>`; each serving process prints
 * `listening on <url>` as the service does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import cluster from 'node:cluster';
import * as fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listeningEndpoint } from './service';

/** Starts the floor with `processes` serving processes sharing one port (as --workers does). */
export async function startHttpFloor(processes: number, answer: string, answerFile: string): Promise<{ child: ChildProcess; endpoint: string }> {
  fs.writeFileSync(answerFile, answer);
  const child = spawn(process.execPath, [__filename, String(processes), answerFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  return { child, endpoint: await listeningEndpoint(child, processes, 'the HTTP floor') };
}

function serve(answer: Buffer): void {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'content-length': answer.length });
      res.end(answer);
    });
  });
  listenLikeTheService(server);
}

/**
 * Runs `serve` in `processes` processes sharing one port (as --workers does: with several,
 * node's cluster gives every worker listening on port 0 the same port, and each process
 * accepts its own connections). Each serving process prints `listening on <url>`.
 */
export function serveOnProcesses(processes: number, serve: () => void | Promise<void>): void {
  const fail = (err: unknown) => {
    process.stderr.write(`bench floor failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  };
  if (processes > 1 && cluster.isPrimary) {
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    for (let i = 0; i < processes; i++) cluster.fork();
    // Exits once every worker has: whatever opens the token next must find it closed.
    process.on('SIGTERM', () => {
      const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
      let running = workers.length;
      if (running === 0) process.exit(0);
      for (const worker of workers) {
        worker.once('exit', () => --running === 0 && process.exit(0));
        worker.kill('SIGTERM');
      }
    });
  } else Promise.resolve(serve()).catch(fail);
}

/** Listens on a free port of 127.0.0.1 with the service's keep-alive and says where. */
export function listenLikeTheService(server: Server): void {
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`));
}

if (require.main === module) {
  const answer = fs.readFileSync(process.argv[3]);
  serveOnProcesses(Number(process.argv[2]), () => serve(answer));
}
