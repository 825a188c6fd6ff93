/**
 * Entry points registered with the functions framework. Deploy one function per target from
 * the same build: `operations` (HTTP API), `subscriber` (CloudEvent from the events topic) or
 * `subscriberPull` (the same work on messages it pulls, for an always-on instance: Terraform's
 * `subscriber_delivery`), and `sweeper` (HTTP, called by Cloud Scheduler: ends operations past
 * their deadline or heartbeat timeout).
 *
 * The framework imports this module before it listens; the served function's first calls to
 * Bigtable and Pub/Sub are made here, so the instance's start pays for them, not its first callers
 * (shared/service/runtime/warm-up.ts).
 */
import './operations.js';
import './subscriber.js';
import './subscriber-pull.js';
import './sweeper.js';
import { warmUpBeforeTraffic } from '../shared/service/runtime/warm-up.js';

await warmUpBeforeTraffic();
