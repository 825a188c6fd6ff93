/**
 * A TCP proxy in front of a service (an emulator) that a test can pause: while paused it keeps
 * every connection open and accepts new ones, but holds the bytes of both directions, as a
 * stalled service or network does; on resume it delivers what it held and forwards again.
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { freePort } from '../../shared/local/emulators.js';

export interface TcpProxy {
  /** `127.0.0.1:port` of the proxy. */
  host: string;
  pause(): void;
  resume(): void;
  /** Bytes forwarded so far, both directions. */
  forwardedBytes(): number;
  stop(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const [targetHost, targetPort] = target.split(':') as [string, string];
  let paused = false;
  let forwarded = 0;
  const held: { to: Socket; chunk: Buffer }[] = [];
  const sockets = new Set<Socket>();
  const send = (to: Socket, chunk: Buffer) => {
    if (paused) {
      held.push({ to, chunk });
      return;
    }
    forwarded += chunk.length;
    if (!to.destroyed) to.write(chunk);
  };
  const server = createServer((client) => {
    const upstream = createConnection({ host: targetHost, port: Number(targetPort) });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => send(upstream, chunk));
    upstream.on('data', (chunk: Buffer) => send(client, chunk));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${port}`,
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      for (const { to, chunk } of held.splice(0)) send(to, chunk);
    },
    forwardedBytes: () => forwarded,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
