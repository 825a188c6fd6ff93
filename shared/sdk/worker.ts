/**
 * The entry point of the `@cloud-lro/worker` package (packages/worker): the reporter, the event
 * contract and its JSON Schema, and the types they use. It and what it imports depend on
 * @google-cloud/pubsub and zod only (no Bigtable client, no functions framework).
 */
export { Code, type CodeName, codeName, isCode, LroError } from './errors.js';
export {
  checkEvent,
  EVENT_VERSION,
  type EventType,
  EventTypeSchema,
  eventAttributes,
  eventJsonSchema,
  type FailedEvent,
  type MetadataEvent,
  type SucceededEvent,
  type WorkerEvent,
  type WorkerEventInput,
  WorkerEventSchema,
} from './events.js';
export { createLogger, type Logger, type Severity } from './log.js';
export { Messaging, type PubSubOptions } from './messaging.js';
export { AnySchema, OperationNameSchema, StatusSchema } from './model.js';
export type { Any, Operation, Status } from './operation.js';
export {
  type CancellationCheck,
  cancellationFromApi,
  type Failure,
  OperationReporter,
  type ReporterConfig,
  type ReporterOptions,
  statusOf,
} from './reporter.js';
