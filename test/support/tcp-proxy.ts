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
  /** Holds only the service's replies: requests still reach it and are answered, late. */
  pauseReplies(): void;
  resume(): void;
  /** Bytes held so far (since the last resume), from the service to the clients. */
  heldReplyBytes(): number;
  /** Bytes forwarded so far, both directions. */
  forwardedBytes(): number;
  stop(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const [targetHost, targetPort] = target.split(':') as [string, string];
  let paused = false;
  let repliesPaused = false;
  let forwarded = 0;
  const held: { to: Socket; chunk: Buffer; reply: boolean }[] = [];
  const sockets = new Set<Socket>();
  const send = (to: Socket, chunk: Buffer, reply: boolean) => {
    if (paused || (reply && repliesPaused)) {
      held.push({ to, chunk, reply });
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
    client.on('data', (chunk: Buffer) => send(upstream, chunk, false));
    upstream.on('data', (chunk: Buffer) => send(client, chunk, true));
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
    pauseReplies() {
      repliesPaused = true;
    },
    resume() {
      paused = false;
      repliesPaused = false;
      for (const { to, chunk, reply } of held.splice(0)) send(to, chunk, reply);
    },
    heldReplyBytes: () => held.filter((h) => h.reply).reduce((sum, h) => sum + h.chunk.length, 0),
    forwardedBytes: () => forwarded,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
