# The sweeper: ends operations that are still running past their deadline or heartbeat timeout
# (DEADLINE_EXCEEDED, announced on the notifications topic), and replays the dead letters whose
# events failed only for transient reasons (Bigtable unavailable) while their operations run.
# Cloud Scheduler calls it every minute.
#
#   Cloud Scheduler --POST (OIDC token of the scheduler account)--> sweeper function
#                                                                      |--> Bigtable (due-time and
#                                                                      |    replay indexes)
#                                                                      |--> notifications topic
#                                                                      +--> events topic (replays)
#
# - Its own runtime identity, which may use the Bigtable instance (roles/bigtable.user) and
#   publish to the notifications and events topics, nothing else.
# - Its own invoker identity for Cloud Scheduler: the only principal that may invoke the
#   function (roles/run.invoker on its Cloud Run service); IAM authenticates every call.
# - Internal ingress only: Cloud Scheduler in the same project counts as internal traffic (Cloud
#   Run's "Restrict network ingress"), as Pub/Sub push does for the subscriber.
# - One sweep takes at most defaults.sweepBudgetMs (45 s) and leaves the rest to the next one;
#   several sweeps at once are safe, so a slow minute does no harm. The job does not retry: the
#   next minute sweeps anyway.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

variable "project_id" {
  description = "Project of the function, the job and the service accounts."
  type        = string
}

variable "region" {
  description = "Region of the function and the scheduler job."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the function, job and service account names."
  type        = string
}

variable "labels" {
  description = "Labels of the function."
  type        = map(string)
  default     = {}
}

variable "runtime" {
  description = "Node.js runtime of the function (the same as the other functions)."
  type        = string
}

variable "source_bucket" {
  description = "Bucket holding the functions' source archive."
  type        = string
}

variable "source_object" {
  description = "Object name of the source archive (shared with the other functions)."
  type        = string
}

variable "build_service_account_id" {
  description = "Full resource name of the service account Cloud Build runs as, once its grants are effective."
  type        = string
}

variable "docker_repository" {
  description = "Artifact Registry repository the build pushes the image to (the build account may write there)."
  type        = string
}

variable "bigtable_instance" {
  description = "Bigtable instance ID."
  type        = string
}

variable "bigtable_table" {
  description = "Bigtable table name."
  type        = string
}

variable "bigtable_app_profile" {
  description = "Bigtable app profile with single-cluster routing and transactional writes."
  type        = string
}

variable "row_key_prefix" {
  description = "Row-key prefix in the table."
  type        = string
  default     = ""
}

variable "events_topic" {
  description = "Name of the events topic."
  type        = string
}

variable "notifications_topic" {
  description = "Name of the notifications topic (the sweeper publishes to it)."
  type        = string
}

variable "wakeups_topic" {
  description = "Name of the wake-up topic (the sweeper publishes a wake-up per operation it ends)."
  type        = string
}

variable "dead_letter_topic" {
  description = "Name of the dead-letter topic."
  type        = string
}

variable "retention_seconds" {
  description = "How long finished operations are kept, in seconds."
  type        = number
}

resource "google_service_account" "sweeper" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-sweeper"
  display_name = "LRO sweeper runtime"
  description  = "Runtime identity of the function that ends operations past their deadline or heartbeat timeout."
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-sweep-invoker"
  display_name = "LRO sweeper invoker"
  description  = "Identity of the Cloud Scheduler job that calls the sweeper function; may invoke it and nothing else."
}

resource "google_bigtable_instance_iam_member" "sweeper" {
  project  = var.project_id
  instance = var.bigtable_instance
  role     = "roles/bigtable.user"
  member   = google_service_account.sweeper.member
}

resource "google_pubsub_topic_iam_member" "sweeper_notifications" {
  project = var.project_id
  topic   = var.notifications_topic
  role    = "roles/pubsub.publisher"
  member  = google_service_account.sweeper.member
}

# Automatic replays of dead letters publish their events again, as `lro dead-letters replay` does.
resource "google_pubsub_topic_iam_member" "sweeper_events" {
  project = var.project_id
  topic   = var.events_topic
  role    = "roles/pubsub.publisher"
  member  = google_service_account.sweeper.member
}

resource "google_pubsub_topic_iam_member" "sweeper_wakeups" {
  project = var.project_id
  topic   = var.wakeups_topic
  role    = "roles/pubsub.publisher"
  member  = google_service_account.sweeper.member
}

resource "google_cloudfunctions2_function" "sweeper" {
  project     = var.project_id
  location    = var.region
  name        = "${var.name_prefix}-sweeper"
  description = "Ends operations past their deadline or heartbeat timeout (DEADLINE_EXCEEDED); called by Cloud Scheduler."
  labels      = var.labels

  build_config {
    runtime           = var.runtime
    entry_point       = "sweeper"
    service_account   = var.build_service_account_id
    docker_repository = var.docker_repository
    environment_variables = {
      NODE_ENV                = "production"
      GOOGLE_NODE_RUN_SCRIPTS = ""
    }

    source {
      storage_source {
        bucket = var.source_bucket
        object = var.source_object
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.sweeper.email
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    min_instance_count               = 0
    max_instance_count               = 2
    max_instance_request_concurrency = 2
    available_cpu                    = "1"
    available_memory                 = "512Mi"
    timeout_seconds                  = 60
    all_traffic_on_latest_revision   = true
    environment_variables = {
      GOOGLE_CLOUD_PROJECT     = var.project_id
      LRO_BIGTABLE_INSTANCE    = var.bigtable_instance
      LRO_BIGTABLE_TABLE       = var.bigtable_table
      LRO_BIGTABLE_APP_PROFILE = var.bigtable_app_profile
      LRO_ROW_KEY_PREFIX       = var.row_key_prefix
      LRO_EVENTS_TOPIC         = var.events_topic
      LRO_NOTIFICATIONS_TOPIC  = var.notifications_topic
      LRO_WAKEUPS_TOPIC        = var.wakeups_topic
      LRO_DEAD_LETTER_TOPIC    = var.dead_letter_topic
      LRO_RETENTION            = "${var.retention_seconds}s"
    }
  }

  depends_on = [
    google_bigtable_instance_iam_member.sweeper,
    google_pubsub_topic_iam_member.sweeper_notifications,
    google_pubsub_topic_iam_member.sweeper_events,
    google_pubsub_topic_iam_member.sweeper_wakeups,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "scheduler_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.sweeper.name
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

resource "google_cloud_scheduler_job" "sweep" {
  project          = var.project_id
  region           = var.region
  name             = "${var.name_prefix}-sweep"
  description      = "Calls the sweeper function: ends operations past their deadline or heartbeat timeout."
  schedule         = "* * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "90s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.sweeper.service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.sweeper.service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.scheduler_invoker]
}

output "function_name" {
  description = "Name of the sweeper function (its Cloud Run service has the same name)."
  value       = google_cloudfunctions2_function.sweeper.name
}

output "uri" {
  description = "URL of the sweeper function."
  value       = google_cloudfunctions2_function.sweeper.service_config[0].uri
}

output "service_account" {
  description = "Email of the sweeper's runtime service account."
  value       = google_service_account.sweeper.email
}

output "scheduler_service_account" {
  description = "Email of the service account whose OIDC token Cloud Scheduler sends."
  value       = google_service_account.scheduler.email
}

output "job_name" {
  description = "Name of the Cloud Scheduler job."
  value       = google_cloud_scheduler_job.sweep.name
}
