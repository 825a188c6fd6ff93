/**
 * The capacity and cost model behind `npm run capacity`: pure arithmetic from a load (operations
 * a minute, events and waits per operation, API instances) and the CPU costs `npm run bench`
 * measures, to function instances and vCPU, Pub/Sub messages and bytes, Bigtable reads, writes
 * and nodes, log volume, and a monthly cost at list prices.
 *
 * Free tiers are left out (they matter only at the smallest loads), and so are Cloud Monitoring,
 * Cloud Scheduler and network egress (small, or zero inside one region). Its inputs (load, CPU
 * costs, assumptions, prices) are in scripts/capacity-inputs.ts, its terms (one function each) in
 * scripts/capacity-terms.ts.
 */
import {
  ASSUMPTIONS,
  type Assumptions,
  type CpuCosts,
  DEFAULT_CPU,
  type Load,
  PRICES,
  type Prices,
} from './capacity-inputs.js';
import {
  apiOf,
  bigtableOf,
  type CapacityResult,
  costOf,
  fanOutOf,
  limitsOf,
  loggingOf,
  pubsubOf,
  ratesOf,
  subscriberOf,
} from './capacity-terms.js';

export {
  ASSUMPTIONS,
  type Assumptions,
  type CpuCosts,
  cpuFromBench,
  DEFAULT_CPU,
  DEFAULT_LOAD,
  type Load,
  PRICES,
  type Prices,
} from './capacity-inputs.js';
export { type CapacityResult, type CostLine, type Flow, round } from './capacity-terms.js';

/** The model. Pure: same inputs, same result. */
export function capacity(
  load: Load,
  cpu: CpuCosts = DEFAULT_CPU,
  a: Assumptions = ASSUMPTIONS,
  prices: Prices = PRICES,
): CapacityResult {
  const rates = ratesOf(load, a);
  const subscriber = subscriberOf(rates, cpu, a);
  const fanOut = fanOutOf(load, rates, cpu, a);
  const sizedApi = apiOf(load, rates, fanOut, cpu, a);
  const { usable: _usable, ...api } = sizedApi;
  const pubsub = pubsubOf(load, rates, fanOut, api.instances, a);
  const bigtable = bigtableOf(load, rates, cpu, a);
  const logging = loggingOf(load, rates, a);
  return {
    load,
    cpu,
    operationsPerSecond: rates.ops,
    eventsPerOperation: rates.eventsPerOperation,
    eventsPerSecond: rates.events,
    apiRequestsPerSecond: rates.requests,
    waitsInFlight: rates.waitsInFlight,
    subscriber,
    api,
    pubsub,
    bigtable,
    logging,
    cost: costOf(load, { rates, subscriber, pubsub, bigtable, logging }, a, prices),
    limits: limitsOf(sizedApi, fanOut, subscriber, bigtable, a),
  };
}
