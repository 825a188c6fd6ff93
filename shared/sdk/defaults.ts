/** Every tunable of the project, with its unit in the name. */
export const defaults = {
  /** Operation IDs: the caller-chosen form (generated IDs are UUIDs, which also match). */
  operationIdPattern: /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
  /** List and children: page size when none is given, and the cap for larger ones. */
  listPageSizeDefault: 50,
  listPageSizeMax: 1000,
  /** Rows a list request examines at most for one page (filters that match rarely). */
  listScanRowsMax: 20_000,
  /** Tree traversal: depth when none is given and the cap. */
  traverseDepthDefault: 10,
  traverseDepthMax: 50,
  traverseNodesMax: 10_000,
  /** Retention of finished operations (AIP-151 suggests 30 days). */
  retentionSeconds: 30 * 24 * 3600,
  /** Wait: timeout when none is given, and the cap (below the API function's own timeout). */
  waitTimeoutDefaultMs: 30_000,
  waitTimeoutMaxMs: 300_000,
  /** Wait safety-net polling: first delay, factor, cap. */
  waitPollInitialMs: 1_000,
  waitPollMultiplier: 1.5,
  waitPollMaxMs: 10_000,
  /**
   * JSON bytes of one list, children or batchWait response at most (LRO_RESPONSE_MAX_BYTES);
   * Cloud Run refuses HTTP/1 responses over 32 MiB.
   */
  responseMaxBytes: 16 * 1024 * 1024,
  /** Batch wait: names in one request at most. */
  batchWaitNamesMax: 100,
  /** HTTP request bodies larger than this are rejected with 413. */
  httpBodyMaxBytes: 256 * 1024,
  /**
   * Push request bodies of the subscriber at most: the envelope of the largest message Pub/Sub
   * can push (10 MB of data, base64-encoded, and its attributes), so that every message can
   * reach the subscriber and be applied or dead-lettered.
   */
  pushBodyMaxBytes: 16 * 1024 * 1024,
  /**
   * After a body was refused (413, 415), bytes still read and discarded at most, so that a
   * client still sending sees the answer; past this the connection is closed (Cloud Run accepts
   * request bodies up to 32 MiB).
   */
  refusedBodyDiscardMaxBytes: 32 * 1024 * 1024,
  /** Incoming JSON (bodies, events, notifications) nested deeper than this is refused. */
  jsonDepthMax: 64,
  /** Event messages larger than this are dead-lettered (Pub/Sub allows 10 MB). */
  eventMaxBytes: 256 * 1024,
  /** Expiration of a per-instance notification subscription left behind by a crash. */
  listenerSubscriptionExpirationSeconds: 24 * 3600,
  /** Worker SDK publish retries. */
  publishRetryInitialMs: 100,
  publishRetryMaxMs: 5_000,
  publishAttemptsMax: 8,
  /** Worker SDK: how long Pub/Sub may take to answer a first request before it counts as unreachable. */
  pubsubConnectTimeoutMs: 10_000,
  /** Worker SDK cancellation polling fallback. */
  cancelPollIntervalMs: 10_000,
  /** Wait: the notification listener's recreation backoff after its stream failed. */
  listenerRecreateInitialMs: 1_000,
  listenerRecreateMaxMs: 30_000,
  /** Wait: how long a wait waits for the listener to start before relying on polling alone. */
  listenerStartTimeoutMs: 5_000,
  /** Wait: notifications the listener holds unacknowledged at most (flow control). */
  listenerMaxOutstandingMessages: 1_000,
  /** Watch (server-sent events): comment line sent this often while nothing changes. */
  watchHeartbeatMs: 15_000,
  /**
   * Watch: an instance's subscription on the notifications topic is deleted this long after its
   * last watch ended (a client reconnecting at once finds it still there).
   */
  watchSubscriptionIdleMs: 5_000,
  /** Watch with LRO_WATCH_MODE=poll: how often a watch reads its operation. */
  watchPollIntervalMs: 1_000,
  /** Client SDK: the timeout of one server wait inside waitForOperation. */
  clientWaitRequestTimeoutMs: 30_000,
  /** Client SDK: retry backoff after a transient failure inside waitForOperation. */
  clientRetryInitialMs: 250,
  clientRetryMaxMs: 5_000,
  /** Wait: first safety-net poll while notifications flow (waitPollInitialMs when they do not). */
  waitPollNotifiedInitialMs: 10_000,
  /** Shutdown on SIGTERM/SIGINT: exit at the latest this long after the signal (Cloud Run: 10 s). */
  shutdownGraceMs: 9_000,
  /**
   * Pull subscriber: messages of one subscription in the handlers at once at most (flow control).
   * Each takes a Bigtable write and a publish, mostly waiting: 100 keep one vCPU busy at the
   * subscriber's CPU per event while bounding memory (a message is at most 10 KiB).
   */
  pullMaxMessages: 100,
  /**
   * Pull subscriber: on shutdown, how long the messages in the handlers may take before the rest
   * are nacked; within shutdownGraceMs, with a second for the acks and the clients to close.
   */
  pullDrainMs: 7_000,
  /** Deadlines: how far ahead a deadline may lie at most. */
  deadlineMaxMs: 366 * 24 * 3600 * 1000,
  /** Heartbeat timeouts: the shortest and longest accepted. */
  heartbeatTimeoutMinMs: 1_000,
  heartbeatTimeoutMaxMs: 7 * 24 * 3600 * 1000,
  /** Worker SDK: a heartbeat is sent when nothing else was published for this long. */
  heartbeatIntervalMs: 15_000,
  /**
   * Worker SDK: at most one progress (metadata) event per operation this often; reports in
   * between are held and the latest wins (0 publishes every report).
   */
  progressIntervalMs: 1_000,
  /** Worker clocks: an emitTime counts no later than the message's publishTime plus this. */
  emitTimeSkewMaxMs: 60_000,
  /** Sweeper: due-index entries read per batch, and the time one sweep may take at most. */
  sweepBatchSize: 500,
  sweepBudgetMs: 45_000,
  /** Sweeper: an index entry whose operation does not exist is kept this long (create racing). */
  sweepMissingGraceMs: 60_000,
  /**
   * Deadline of one Bigtable call (a read, a write, a CheckAndMutateRow): a stalled Bigtable
   * fails the call after this long instead of holding a request or a delivery. Not shorter: the
   * emulator on a loaded 2-core machine took over 7 s for some calls of 200 concurrent creates.
   */
  bigtableCallTimeoutMs: 15_000,
  /**
   * Subscriber: how long recording why a delivery failed may take (in Bigtable, which is often
   * what failed); the failure is remembered in memory as well.
   */
  failureRecordTimeoutMs: 1_000,
  /**
   * Dead letters whose last error was transient are replayed by the sweeper while their
   * operation runs: the first at once, the n-th (n > 1) after initial x 2^(n-2), capped, and no
   * more than `deadLetterAutoReplaysMax` times for one event.
   */
  deadLetterAutoReplayInitialMs: 60_000,
  deadLetterAutoReplayMaxMs: 30 * 60_000,
  deadLetterAutoReplaysMax: 10,
  /** Sweeper: automatic-replay index entries read per sweep at most. */
  deadLetterAutoReplayBatchSize: 100,
  /**
   * API announcements (created, cancelRequested, deleted notifications), published after the
   * answer: attempts at most, and the backoff between them.
   */
  announceAttemptsMax: 4,
  announceRetryInitialMs: 1_000,
  announceRetryMaxMs: 10_000,
  /** Local stack (`npm start`): how often the sweeper runs. */
  sweepLocalIntervalMs: 2_000,
} as const;
