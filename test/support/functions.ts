/** The functions under the real functions framework, on a free port, for tests. */

import {
  type FunctionTarget,
  type RunningFunction,
  type StartFunctionOptions,
  startFunction as start,
} from '../../scripts/run-function.js';
import { freePort } from '../../shared/local/emulators.js';

export { ROOT, type RunningFunction } from '../../scripts/run-function.js';

export async function startFunction(
  target: FunctionTarget,
  env: Record<string, string>,
  port?: number,
  options: StartFunctionOptions = {},
): Promise<RunningFunction> {
  // Starting the functions framework takes seconds on a quiet machine and can take far longer
  // on a saturated one; the test's hook timeout (120 s) is the bound, not a start-up estimate.
  return start(target, env, port ?? (await freePort()), { readyTimeoutMs: 110_000, ...options });
}
