/**
 * The functions framework runs every request inside a Node.js `domain`, so that an exception one
 * request throws outside any promise chain becomes that request's 500 instead of ending the
 * process. While a domain is active, Node tags every async resource created (each promise of the
 * Bigtable and Pub/Sub clients included) with it, and enters and leaves it around every callback,
 * each time resetting the process's uncaught-exception capture. The same Bigtable read costs about
 * 1.3× the CPU inside a domain on Node 20 and 2× on Node 24 (`npm run bench`: "the store read
 * inside a domain"), and a listener stream opened during a request stays in that request's domain
 * for its whole life.
 *
 * The functions' handlers answer every error themselves (a Google error body, or a failed
 * delivery that Pub/Sub retries), so they leave the domain before doing any work. What they give
 * up: an exception thrown outside any promise chain (a bug) ends the instance through the
 * framework's process handler instead of answering 500; Cloud Run starts another.
 */
export function leaveFrameworkDomain(): void {
  (process as { domain?: { exit(): void } | null | undefined }).domain?.exit();
}
