/**
 * Entry points registered with the functions framework. Deploy one function per target from
 * the same build: `operations` (HTTP API) and `subscriber` (CloudEvent from the events topic).
 */
import './operations.js';
import './subscriber.js';
