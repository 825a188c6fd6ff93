# One service account per role, so that each identity holds only what its role needs:
#   api        runtime of the HTTP API function
#   subscriber runtime of the subscriber function
#   push       signs the OIDC token of Pub/Sub push deliveries (invoker of the subscriber only)
#   worker     for workers: publishes events, and calls the API (the cancellation check)
#   build      builds the functions' container images in Cloud Build
# Grants on topics, the Bigtable instance, the functions, the source bucket and the image
# repository are made where those resources are created (resource-level IAM); only the two grants
# below need the project.

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
  description = "Project of the service accounts."
  type        = string
}

variable "iam_propagation_seconds" {
  description = "Wait after the build account's grant, in seconds, before anything builds as that account (Google: access changes typically take 2 minutes, sometimes 7 or more)."
  type        = number
  default     = 120
}

variable "name_prefix" {
  description = "Prefix of the service account IDs (at most 16 characters, so that every ID fits in 30)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3 to 16 lowercase letters, digits or hyphens, starting with a letter."
  }
}

resource "google_service_account" "api" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-api"
  display_name = "LRO API runtime"
  description  = "Runtime identity of the long-running operations HTTP API function."
}

resource "google_service_account" "subscriber" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-subscriber"
  display_name = "LRO subscriber runtime"
  description  = "Runtime identity of the function that applies worker events to Bigtable."
}

resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-push"
  display_name = "LRO push invoker"
  description  = "Identity of Pub/Sub push deliveries from the events topic to the subscriber function."
}

resource "google_service_account" "worker" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-worker"
  display_name = "LRO worker"
  description  = "Identity for workers: publishes to the events topic and may call the LRO API."
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "LRO function builder"
  description  = "Cloud Build identity that builds the LRO functions."
}

# The API opens, per instance, a streaming-pull subscription on the wake-up topic, and one on the
# notifications topic while it serves :watch streams (each with an expiration policy), and
# deletes them when done. A subscription that does not exist yet cannot
# carry an IAM binding, and Pub/Sub offers no resource-name IAM conditions for subscriptions, so
# creating one needs a project-level grant. Rather than roles/pubsub.editor (which also manages
# topics, snapshots and schemas), this custom role holds only what the listener does with its own
# subscription. Attaching to a topic is granted on the wake-up and notifications topics themselves.
#
# No update: the listener never changes a subscription after creating it. Delete and consume stay
# project-wide: IAM conditions on the resource name (resource.name.startsWith(".../subscriptions/
# lro-")) are honoured only by the services listed in Google's "Resource attributes for IAM
# Conditions" page, which has Pub/Sub Lite but not Pub/Sub, so such a condition could not narrow
# them; and a subscription created at run time cannot carry a grant of its own beforehand.
resource "google_project_iam_custom_role" "notification_listener" {
  project     = var.project_id
  role_id     = "${replace(var.name_prefix, "-", "_")}_notification_listener"
  title       = "LRO notification listener"
  description = "Create, read, consume and delete the API's own notification subscriptions."
  permissions = [
    "pubsub.subscriptions.consume",
    "pubsub.subscriptions.create",
    "pubsub.subscriptions.delete",
    "pubsub.subscriptions.get",
  ]
}

resource "google_project_iam_member" "api_notification_listener" {
  project = var.project_id
  role    = google_project_iam_custom_role.notification_listener.name
  member  = google_service_account.api.member
}

# A build writes its logs to Cloud Logging, which only a project-level grant allows (Cloud Run's
# "build service account" page: Logs Writer, plus Artifact Registry Writer on the image repository
# and read access to the source, both granted in infra/functions on those resources). No
# roles/cloudbuild.builds.builder: it reads and writes every bucket's objects in the project.
resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

# Access changes take effect after a delay (Google's "Access change propagation": typically two
# minutes, sometimes seven or longer). A function deployed before the build account's grants are
# effective fails its build; the build account's output below is available only after this wait,
# so the functions that name it wait too.
resource "time_sleep" "build_grant_propagation" {
  create_duration = "${var.iam_propagation_seconds}s"

  triggers = {
    grant = google_project_iam_member.build_log_writer.id
  }
}

output "api_email" {
  description = "Email of the API runtime service account."
  value       = google_service_account.api.email
}

output "api_member" {
  description = "IAM member of the API runtime service account."
  value       = google_service_account.api.member
}

output "subscriber_email" {
  description = "Email of the subscriber runtime service account."
  value       = google_service_account.subscriber.email
}

output "subscriber_member" {
  description = "IAM member of the subscriber runtime service account."
  value       = google_service_account.subscriber.member
}

output "push_email" {
  description = "Email of the push invoker service account."
  value       = google_service_account.push.email
}

output "push_member" {
  description = "IAM member of the push invoker service account."
  value       = google_service_account.push.member
}

output "push_service_account_id" {
  description = "Full resource name of the push invoker service account."
  value       = google_service_account.push.name
}

output "worker_email" {
  description = "Email of the worker service account."
  value       = google_service_account.worker.email
}

output "worker_member" {
  description = "IAM member of the worker service account."
  value       = google_service_account.worker.member
}

output "build_member" {
  description = "IAM member of the build service account."
  value       = google_service_account.build.member
}

output "build_email" {
  description = "Email of the build service account."
  value       = google_service_account.build.email
}

output "build_service_account_id" {
  description = "Full resource name of the build service account (projects/PROJECT/serviceAccounts/EMAIL), available once its builder grant is effective."
  value       = google_service_account.build.name
  depends_on  = [time_sleep.build_grant_propagation]
}
