# Operating the service: log-based metrics from the functions' structured logs, alert policies and
# one dashboard.
#
# Log-based metrics (the lines they count are written by shared/service/events/subscriber.ts, shared/service/api/api.ts and
# the sweeper; the functions log one JSON object per line, which Cloud Logging reads as jsonPayload):
#   <prefix>_events_applied             subscriber, `event applied`, labels type and outcome
#   <prefix>_events_dead_lettered       subscriber, `event dead-lettered` (a permanent failure)
#   <prefix>_apply_latency              subscriber, `event applied`, applyLatencyMs (distribution)
#   <prefix>_operations_created         API, `operation created`
#   <prefix>_operations_<outcome>       operations ended: succeeded, failed, cancelled (a failed
#                                       event with code 1) and deadline_exceeded (the sweeper's
#                                       `operation deadline exceeded`)
#
# Log exclusions (exclude_routine_logs, default on): the lines above are written once per event
# or request (about 2 KiB with the platform's request log), which at 10,000 operations a minute
# cost more than the service itself (docs/capacity.md). Project-scoped log-based metrics are
# calculated from every entry the Logging API receives, whatever the exclusion filters, so the
# routine INFO lines and the 2xx-4xx platform request logs of the API and the subscriber are
# excluded from storage while every metric, alert and chart keeps counting them. Warnings,
# errors and 5xx requests are kept. The metrics here must therefore stay project-scoped (no
# bucket_name): a bucket-scoped metric sees only what is stored.
#
# Alert policies, each with what to do first in its documentation: dead letters arrived; the
# oldest unacknowledged event older than a threshold; 5xx ratio of the API or the subscriber;
# the sweeper not succeeding for 10 minutes (only when the sweeper's service name is given); the
# API's account deleting a subscription that is not one of its own notification listeners.
#
# First apply: Cloud Monitoring refuses an alert policy on a log-based metric created moments
# before ("Error 404: Cannot find metric(s) that match type = "logging.googleapis.com/user/...".
# If a metric was created recently, it could take up to 10 minutes to become available";
# terraform-provider-google issue 11102). The metric filters name only values known at plan time
# (the service names are built from the prefix, as the functions' own names are), so the metrics
# are created as soon as the APIs answer, and every alert policy on one of them names it through
# time_sleep.log_metrics, which waits log_metric_propagation_seconds after the metrics exist. That
# wait runs alongside the function builds.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
    time = {
      source = "hashicorp/time"
    }
  }
}

variable "project_id" {
  description = "Project of the metrics, alert policies and dashboard."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the metric names and of the alert and dashboard titles."
  type        = string
}

variable "labels" {
  description = "User labels of the alert policies."
  type        = map(string)
  default     = {}
}

variable "api_service_name" {
  description = "Cloud Run service name of the API function (a 2nd gen function's service has the function's name)."
  type        = string
}

variable "subscriber_service_name" {
  description = "Cloud Run service name of the subscriber function."
  type        = string
}

variable "sweeper_service_name" {
  description = "Cloud Run service name of the sweeper function; null leaves the sweeper alert out."
  type        = string
  default     = null
}

variable "api_service_account_email" {
  description = "Email of the API's runtime service account, for the alert on subscriptions it deletes; null leaves that alert out."
  type        = string
  default     = null
}

variable "notifications_topic_name" {
  description = "Name of the notifications topic; the subscriptions the API opens while it serves watches are named after it (TOPIC-watch-HEX)."
  type        = string
  default     = "lro-notifications"
}

variable "wakeups_topic_name" {
  description = "Name of the wake-up topic; the API's listener subscriptions for waits are named after it (TOPIC-waiter-HEX)."
  type        = string
  default     = "lro-wakeups"
}

variable "log_metric_propagation_seconds" {
  description = "Wait after the log-based metrics are created, in seconds, before alert policies on them are created (Cloud Monitoring may take up to 10 minutes to know a new metric)."
  type        = number
  default     = 600
}

variable "events_subscription_name" {
  description = "Name of the push subscription delivering events to the subscriber."
  type        = string
}

variable "dead_letter_store_subscription_name" {
  description = "Name of the push subscription that keeps dead letters in Bigtable (infra/dead-letter-store); null for none."
  type        = string
  default     = null
}

variable "notification_channels" {
  description = "Notification channels (projects/PROJECT/notificationChannels/ID) every alert policy notifies."
  type        = list(string)
  default     = []
}

variable "exclude_routine_logs" {
  description = "Exclude the per-event and per-request INFO lines and the non-5xx platform request logs of the API and the subscriber from storage (metrics still count them)."
  type        = bool
  default     = true
}

variable "oldest_unacked_threshold_seconds" {
  description = "Alert when the oldest unacknowledged event on the push subscription is older than this."
  type        = number
  default     = 300
}

variable "error_ratio_threshold" {
  description = "Alert when the share of 5xx answers of the API or the subscriber over 10 minutes is above this (0 to 1)."
  type        = number
  default     = 0.05
}

locals {
  metric_prefix = replace(var.name_prefix, "-", "_")
  # Names of the log-based metrics; the dashboard reads them from here, the alerts from the resources.
  metric_names = merge(
    { for m in ["events_applied", "events_dead_lettered", "apply_latency", "operations_created"] : m => "${local.metric_prefix}_${m}" },
    { for outcome in keys(local.ended) : "operations_${outcome}" => "${local.metric_prefix}_operations_${outcome}" },
  )
  run           = "resource.type=\"cloud_run_revision\""
  on_subscriber = "${local.run} AND resource.labels.service_name=\"${var.subscriber_service_name}\""
  on_api        = "${local.run} AND resource.labels.service_name=\"${var.api_service_name}\""
  # The sweeper's lines are counted from any service of this deployment, so the metric exists
  # before the sweeper's service name is known here.
  on_deployment = "${local.run} AND resource.labels.service_name=~\"^${var.name_prefix}-\""
  applied       = "${local.on_subscriber} AND jsonPayload.message=\"event applied\""
  # Ends an operation: a terminal event's first application (a re-announcement is not counted).
  ended_by_event = "${local.applied} AND jsonPayload.outcome=\"applied\""

  ended = {
    succeeded         = "${local.ended_by_event} AND jsonPayload.type=\"succeeded\""
    failed            = "${local.ended_by_event} AND jsonPayload.type=\"failed\" AND NOT jsonPayload.code=1"
    cancelled         = "${local.ended_by_event} AND jsonPayload.type=\"failed\" AND jsonPayload.code=1"
    deadline_exceeded = "${local.on_deployment} AND jsonPayload.message=\"operation deadline exceeded\""
  }

  # What the exclusions drop from storage: routine lines of the two busy functions.
  busy_functions = "${local.run} AND resource.labels.service_name=~\"^(${var.api_service_name}|${var.subscriber_service_name})$\""
  log_exclusions = {
    request_logs = "${local.busy_functions} AND logName=~\"/logs/run.googleapis.com%2Frequests$\" AND NOT httpRequest.status>=500"
    info_lines   = "${local.busy_functions} AND logName=~\"/logs/run.googleapis.com%2Fstdout$\" AND severity<=INFO"
  }

  user_metric = "metric.type=\"logging.googleapis.com/user"
  requests    = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\""
  functions   = "resource.label.service_name=one_of(\"${var.api_service_name}\", \"${var.subscriber_service_name}\")"
  push_subscription = join(" AND ", [
    "resource.type=\"pubsub_subscription\"",
    "resource.label.subscription_id=\"${var.events_subscription_name}\"",
  ])
  dead_letter_store_subscription = join(" AND ", [
    "resource.type=\"pubsub_subscription\"",
    "resource.label.subscription_id=\"${coalesce(var.dead_letter_store_subscription_name, "-")}\"",
  ])
  oldest_unacked_age = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
  console            = "https://console.cloud.google.com"
}

# ---------------------------------------------------------------------------------------------
# Log-based metrics
# ---------------------------------------------------------------------------------------------

resource "google_logging_metric" "events_applied" {
  project     = var.project_id
  name        = local.metric_names.events_applied
  description = "Worker events the subscriber applied (outcome applied) or found already stored and announced again (outcome reannounced), by event type."
  filter      = local.applied

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "${var.name_prefix} events applied"

    labels {
      key         = "type"
      value_type  = "STRING"
      description = "Event type: metadata, succeeded or failed."
    }
    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "applied or reannounced."
    }
  }

  label_extractors = {
    type    = "EXTRACT(jsonPayload.type)"
    outcome = "EXTRACT(jsonPayload.outcome)"
  }
}

resource "google_logging_metric" "events_dead_lettered" {
  project     = var.project_id
  name        = local.metric_names.events_dead_lettered
  description = "Events the subscriber sent to the dead-letter topic because they can never apply (malformed, schema violation). Events Pub/Sub dead-letters after the last delivery attempt are in pubsub.googleapis.com/subscription/dead_letter_message_count."
  filter      = "${local.on_subscriber} AND severity=ERROR AND jsonPayload.message=\"event dead-lettered\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "${var.name_prefix} events dead-lettered"
  }
}

resource "google_logging_metric" "apply_latency" {
  project         = var.project_id
  name            = local.metric_names.apply_latency
  description     = "Time from an event's Pub/Sub publish time to its change stored in Bigtable, in milliseconds."
  filter          = "${local.ended_by_event} AND jsonPayload.applyLatencyMs>=0"
  value_extractor = "EXTRACT(jsonPayload.applyLatencyMs)"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "ms"
    display_name = "${var.name_prefix} apply latency"

    labels {
      key         = "type"
      value_type  = "STRING"
      description = "Event type: metadata, succeeded or failed."
    }
  }

  label_extractors = {
    type = "EXTRACT(jsonPayload.type)"
  }

  # 1 ms to about 63 minutes (1.4^45 ms), each bucket 40 % wider than the one before; slower
  # applies land in the overflow bucket.
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 45
      growth_factor      = 1.4
      scale              = 1
    }
  }
}

resource "google_logging_metric" "operations_created" {
  project     = var.project_id
  name        = local.metric_names.operations_created
  description = "Operations created through the API."
  filter      = "${local.on_api} AND jsonPayload.message=\"operation created\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "${var.name_prefix} operations created"
  }
}

resource "google_logging_metric" "operations_ended" {
  for_each = local.ended

  project     = var.project_id
  name        = local.metric_names["operations_${each.key}"]
  description = "Operations that ended ${replace(each.key, "_", " ")}."
  filter      = each.value

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "${var.name_prefix} operations ${replace(each.key, "_", " ")}"
  }
}

# Alert policies name a log-based metric through this wait's triggers, never the metric directly,
# so that they are created only once Cloud Monitoring knows the metric. The triggers hold the
# metric names, which stay the same, so the wait runs again only if a metric is replaced.
resource "time_sleep" "log_metrics" {
  create_duration = "${var.log_metric_propagation_seconds}s"

  triggers = {
    events_dead_lettered = google_logging_metric.events_dead_lettered.name
  }
}

# ---------------------------------------------------------------------------------------------
# Alert policies
# ---------------------------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: dead letters arrived"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "The subscriber dead-lettered an event it can never apply"

    condition_threshold {
      filter          = "${local.user_metric}/${time_sleep.log_metrics.triggers["events_dead_lettered"]}\" AND ${local.run}"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  conditions {
    display_name = "Pub/Sub dead-lettered an event after the last delivery attempt"

    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND ${local.push_subscription}"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name_prefix}: events were dead-lettered"
    content   = <<-EOT
      Events reached the dead-letter topic: their operations did not get that change.

      First run `lro dead-letters list` (with `--url` set to the API) to see each dead letter's
      reason and operation. A malformed or invalid event is the worker's bug: fix the worker, then
      discard the dead letter. An event Pub/Sub gave up on after every delivery attempt (unknown
      operation, Bigtable unavailable) can be replayed with `lro dead-letters replay ID` once the
      cause is gone. Then `lro get OPERATION` to check the operation moved on.

      Logs: `jsonPayload.message="event dead-lettered"` on service ${var.subscriber_service_name}
      (field `reason`).
    EOT
  }
}

resource "google_monitoring_alert_policy" "events_backlog" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: events waiting longer than ${var.oldest_unacked_threshold_seconds}s"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "Oldest unacknowledged event on ${var.events_subscription_name}"

    condition_threshold {
      filter          = "${local.oldest_unacked_age} AND ${local.push_subscription}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.oldest_unacked_threshold_seconds
      duration        = "60s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name_prefix}: worker events are not being applied"
    content   = <<-EOT
      The subscription ${var.events_subscription_name} holds an event older than
      ${var.oldest_unacked_threshold_seconds} seconds: operations are not seeing their workers'
      progress or completion.

      First run `lro list --filter "done = false"` to see which operations are waiting, and
      `lro dead-letters list` for events that already gave up. Then look at the subscriber
      (service ${var.subscriber_service_name}): its 5xx answers (push delivery) or its
      `pull subscriber stream failed` warnings (pull delivery), and `event not applied` or
      `event for an unknown operation` warnings say why deliveries fail (Bigtable unavailable,
      events for operations that were never created), and its instance count whether it hit
      its maximum.
    EOT
  }
}

resource "google_monitoring_alert_policy" "dead_letter_store_backlog" {
  count                 = var.dead_letter_store_subscription_name == null ? 0 : 1
  project               = var.project_id
  display_name          = "${var.name_prefix}: dead letters not stored for ${var.oldest_unacked_threshold_seconds}s"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "Oldest unacknowledged dead letter on ${coalesce(var.dead_letter_store_subscription_name, "-")}"

    condition_threshold {
      filter          = "${local.oldest_unacked_age} AND ${local.dead_letter_store_subscription}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.oldest_unacked_threshold_seconds
      duration        = "60s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name_prefix}: dead letters are not reaching the dead-letter store"
    content   = <<-EOT
      The subscription ${coalesce(var.dead_letter_store_subscription_name, "-")} holds a
      dead letter older than ${var.oldest_unacked_threshold_seconds} seconds: it is not in the
      dead-letter store yet, so `lro dead-letters list` does not show it, and Pub/Sub drops it
      once the subscription's message retention (7 days by default) has passed.

      First run `lro dead-letters list` to see what the store already holds. Then look at the
      subscriber (service ${var.subscriber_service_name}), which stores dead letters: its 5xx
      answers (push delivery) and warnings say why the store fails (Bigtable unavailable,
      permissions, or a `pull subscriber stream failed` in pull delivery).
    EOT
  }
}

resource "google_monitoring_alert_policy" "error_ratio" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: 5xx ratio above ${var.error_ratio_threshold * 100}%"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "Share of 5xx answers over 10 minutes, per function"

    condition_threshold {
      filter             = "${local.requests} AND ${local.functions} AND metric.label.response_code_class=\"5xx\""
      denominator_filter = "${local.requests} AND ${local.functions}"
      comparison         = "COMPARISON_GT"
      threshold_value    = var.error_ratio_threshold
      duration           = "0s"

      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }

      denominator_aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name_prefix}: the API or the subscriber is failing"
    content   = <<-EOT
      More than ${var.error_ratio_threshold * 100}% of the requests to ${var.api_service_name}
      (the API) or ${var.subscriber_service_name} (the subscriber, pushed by Pub/Sub) got a 5xx
      answer over 10 minutes. Bad requests get 4xx, so a 5xx is the service's or a dependency's
      fault.

      First run `lro list --page-size 1` against the API: an UNAVAILABLE answer points at
      Bigtable or Pub/Sub. For the subscriber, `lro dead-letters list` shows events that gave up,
      and the subscription backlog on the dashboard shows what is waiting. The ERROR and WARNING
      log lines of the failing service carry the operation and the error.
    EOT
  }
}

resource "google_monitoring_alert_policy" "sweeper" {
  count = var.sweeper_service_name == null ? 0 : 1

  project               = var.project_id
  display_name          = "${var.name_prefix}: sweeper not succeeding"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "No successful sweeper run for 10 minutes"

    condition_absent {
      filter   = "${local.requests} AND resource.label.service_name=\"${coalesce(var.sweeper_service_name, "-")}\" AND metric.label.response_code_class=\"2xx\""
      duration = "600s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name_prefix}: operations past their deadline are not being ended"
    content   = <<-EOT
      The sweeper (service ${coalesce(var.sweeper_service_name, "-")}) has not answered a run
      with success for 10 minutes: operations whose deadline or heartbeat passed stay running, and
      their callers wait.

      First run `lro list --filter "done = false"` to see the operations still running, then look
      at the sweeper's ERROR log lines and at its Cloud Scheduler job (paused, failing to
      authenticate, or the service not deployed).
    EOT
  }
}

# The API's account may delete any subscription of the project (infra/identities says why that
# cannot be narrowed with IAM); the code only ever deletes its own listeners (shared/service/wait/waiter.ts):
# WAKEUPS_TOPIC-waiter-<12 hex digits> for waits and NOTIFICATIONS_TOPIC-watch-<12 hex digits> for
# watches. Any other DeleteSubscription by that
# account is worth a look at once. Deleting a subscription writes an Admin Activity audit entry,
# which is always on and lands in the _Required bucket, where no exclusion applies; the condition
# matches those entries directly, so it needs no log-based metric (and no wait for one).
resource "google_monitoring_alert_policy" "subscription_deleted_by_api" {
  count = var.api_service_account_email == null ? 0 : 1

  project               = var.project_id
  display_name          = "${var.name_prefix}: the API deleted a subscription that is not its own"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "DeleteSubscription by the API's account outside its notification listeners"

    condition_matched_log {
      filter = "protoPayload.methodName=\"google.pubsub.v1.Subscriber.DeleteSubscription\" AND protoPayload.authenticationInfo.principalEmail=\"${var.api_service_account_email}\" AND NOT protoPayload.resourceName=~\"^projects/[^/]+/subscriptions/(${var.wakeups_topic_name}-waiter|${var.notifications_topic_name}-watch)-[0-9a-f]{12}$\""
    }
  }

  alert_strategy {
    notification_rate_limit {
      period = "300s"
    }
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name_prefix}: a subscription was deleted by the API's service account"
    content   = <<-EOT
      The API's service account (${coalesce(var.api_service_account_email, "-")}) deleted a
      subscription that is not one of its listeners (${var.wakeups_topic_name}-waiter-... or
      ${var.notifications_topic_name}-watch-...). The API never does that: its credentials may
      be in other hands, or the code changed.

      First run `lro list --page-size 1` against the API to check it still answers, then look at
      the audit entry (Logs Explorer, the incident's log link): which subscription, from which
      caller IP and user agent. If it was the push subscription (events) or the dead-letter store,
      `terraform apply` recreates it; events published meanwhile are on the events topic only
      if its retention covers them (replay with `gcloud pubsub subscriptions seek`). Rotate the
      account's keys if any exist, and review who may act as it.
    EOT
  }
}

# ---------------------------------------------------------------------------------------------
# Dashboard
# ---------------------------------------------------------------------------------------------

locals {
  tile_width  = 6
  tile_height = 4

  # One chart per entry: title, then its data sets (filter, aligner, reducer, group-by, legend).
  charts = [
    {
      title = "Events applied per second, by type"
      sets = [{
        filter  = "${local.user_metric}/${local.metric_names.events_applied}\" AND ${local.run}"
        aligner = "ALIGN_RATE", reducer = "REDUCE_SUM", group_by = ["metric.label.type"], legend = "$${metric.labels.type}"
        plot    = "STACKED_AREA"
      }]
    },
    {
      title = "Apply latency (publish to stored), ms"
      sets = [for p in ["50", "99"] : {
        filter  = "${local.user_metric}/${local.metric_names.apply_latency}\" AND ${local.run}"
        aligner = "ALIGN_DELTA", reducer = "REDUCE_PERCENTILE_${p}", group_by = [], legend = "p${p}"
        plot    = "LINE"
      }]
    },
    {
      title = "Operations created and ended per minute, by outcome"
      sets = concat(
        [{
          filter  = "${local.user_metric}/${local.metric_names.operations_created}\" AND ${local.run}"
          aligner = "ALIGN_SUM", reducer = "REDUCE_SUM", group_by = [], legend = "created"
          plot    = "LINE"
        }],
        [for outcome in keys(local.ended) : {
          filter  = "${local.user_metric}/${local.metric_names["operations_${outcome}"]}\" AND ${local.run}"
          aligner = "ALIGN_SUM", reducer = "REDUCE_SUM", group_by = [], legend = replace(outcome, "_", " ")
          plot    = "LINE"
        }],
      )
    },
    {
      title = "Dead letters per minute"
      sets = [
        {
          filter  = "${local.user_metric}/${local.metric_names.events_dead_lettered}\" AND ${local.run}"
          aligner = "ALIGN_SUM", reducer = "REDUCE_SUM", group_by = [], legend = "rejected by the subscriber"
          plot    = "STACKED_BARS"
        },
        {
          filter  = "metric.type=\"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND ${local.push_subscription}"
          aligner = "ALIGN_SUM", reducer = "REDUCE_SUM", group_by = [], legend = "delivery attempts exhausted"
          plot    = "STACKED_BARS"
        },
      ]
    },
    {
      title = "Instances of each function"
      sets = [{
        filter  = "metric.type=\"run.googleapis.com/container/instance_count\" AND ${local.run} AND resource.label.service_name=starts_with(\"${var.name_prefix}-\")"
        aligner = "ALIGN_MAX", reducer = "REDUCE_SUM", group_by = ["resource.label.service_name"], legend = "$${resource.labels.service_name}"
        plot    = "LINE"
      }]
    },
    {
      title = "Events subscription backlog"
      sets = [
        {
          filter  = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.push_subscription}"
          aligner = "ALIGN_MAX", reducer = "REDUCE_SUM", group_by = [], legend = "unacknowledged events"
          plot    = "LINE"
        },
        {
          filter  = "${local.oldest_unacked_age} AND ${local.push_subscription}"
          aligner = "ALIGN_MAX", reducer = "REDUCE_MAX", group_by = [], legend = "oldest, seconds"
          plot    = "LINE"
        },
      ]
    },
  ]

  dashboard = {
    displayName = "${var.name_prefix}: long-running operations"
    mosaicLayout = {
      columns = 2 * local.tile_width
      tiles = [for i, chart in local.charts : {
        xPos   = (i % 2) * local.tile_width
        yPos   = floor(i / 2) * local.tile_height
        width  = local.tile_width
        height = local.tile_height
        widget = {
          title = chart.title
          xyChart = {
            dataSets = [for set in chart.sets : {
              plotType           = set.plot
              legendTemplate     = set.legend
              minAlignmentPeriod = "60s"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = set.filter
                  aggregation = {
                    alignmentPeriod    = "60s"
                    perSeriesAligner   = set.aligner
                    crossSeriesReducer = set.reducer
                    groupByFields      = set.group_by
                  }
                }
              }
            }]
          }
        }
      }]
    }
  }
}

resource "google_monitoring_dashboard" "this" {
  project        = var.project_id
  dashboard_json = jsonencode(local.dashboard)

  # Its charts name the log-based metrics.
  depends_on = [
    google_logging_metric.events_applied,
    google_logging_metric.events_dead_lettered,
    google_logging_metric.apply_latency,
    google_logging_metric.operations_created,
    google_logging_metric.operations_ended,
  ]
}

# Applies to the _Default sink; the log-based metrics above still count what these exclude.
resource "google_logging_project_exclusion" "routine" {
  for_each = var.exclude_routine_logs ? local.log_exclusions : {}

  project     = var.project_id
  name        = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  description = "Routine ${replace(each.key, "_", " ")} of ${var.api_service_name} and ${var.subscriber_service_name}: counted by the log-based metrics, not stored."
  filter      = each.value
}

# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------

output "dashboard_url" {
  description = "Console URL of the dashboard."
  value       = "${local.console}/monitoring/dashboards/custom/${element(split("/", google_monitoring_dashboard.this.id), 3)}?project=${var.project_id}"
}

output "alert_policies" {
  description = "Resource names of the alert policies."
  value = concat(
    [for p in [google_monitoring_alert_policy.dead_letters, google_monitoring_alert_policy.events_backlog, google_monitoring_alert_policy.error_ratio] : p.name],
    google_monitoring_alert_policy.sweeper[*].name,
    google_monitoring_alert_policy.dead_letter_store_backlog[*].name,
    google_monitoring_alert_policy.subscription_deleted_by_api[*].name,
  )
}

output "log_metrics" {
  description = "Names of the log-based metrics (metric type logging.googleapis.com/user/NAME)."
  value = concat(
    [for m in [google_logging_metric.events_applied, google_logging_metric.events_dead_lettered, google_logging_metric.apply_latency, google_logging_metric.operations_created] : m.name],
    [for m in google_logging_metric.operations_ended : m.name],
  )
}
