/**
 * Entry points registered with the functions framework. Deploy one function per target from
 * the same build: `operations` (HTTP API), `subscriber` (CloudEvent from the events topic) and
 * `sweeper` (HTTP, called by Cloud Scheduler: ends operations past their deadline or heartbeat
 * timeout).
 */
import './operations.js';
import './subscriber.js';
import './sweeper.js';
