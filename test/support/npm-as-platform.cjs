// Runs npm's own CLI as if on another platform, architecture and Node.js version, so that its
// platform (os, cpu) and engine checks judge the lock file as they would on that machine:
//   node npm-as-platform.cjs <npm-cli.js> <platform> <arch> <node version> <npm args...>
// (`npm install --os=darwin --cpu=arm64` applies those flags to optional dependencies only.)
'use strict';
const [cli, platform, arch, version, ...args] = process.argv.slice(2);
Object.defineProperty(process, 'platform', { value: platform });
Object.defineProperty(process, 'arch', { value: arch });
Object.defineProperty(process, 'version', { value: version });
process.argv = [process.argv[0], cli, ...args];
require(cli);
