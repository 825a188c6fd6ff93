/**
 * Run by the benchmark as a child process: the functions framework serving an HTTP function that
 * does nothing but answer a small JSON body, the floor under any function's cost per request
 * (express, body parsers, the domain each request runs in). Prints its port; `GET /cpu` answers
 * the CPU time (ms) the process has used so far.
 */
import * as functions from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';

const body = JSON.stringify({ name: 'operations/framework-floor', done: false });
functions.http('floor', (req, res) => {
  if (req.path === '/cpu') {
    const used = process.cpuUsage();
    res.json({ cpuMs: (used.user + used.system) / 1000 });
    return;
  }
  res.setHeader('content-type', 'application/json');
  res.end(body);
});
const server = getTestServer('floor');
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
});
