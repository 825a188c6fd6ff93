# Topics of the service and who may use them.
#
#   events         workers publish here; a push subscription (infra/push-subscription) delivers
#                  to the subscriber function
#   notifications  the subscriber announces every change, the API announces cancellations;
#                  workers listen here for cancellation, API instances only while they serve
#                  a :watch stream
#   wake-ups       the subscriber, the sweeper and the API announce every ended operation as a
#                  bodiless message; every API instance listens here to complete waits
#   dead letter    events that cannot be applied, from the subscriber (permanent failures) and
#                  from Pub/Sub (delivery attempts exhausted); a pull subscription keeps them
#
# Publish and subscribe rights are granted on each topic, never on the project.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

variable "project_id" {
  description = "Project of the topics."
  type        = string
}

variable "events_topic_name" {
  description = "Name of the events topic."
  type        = string
}

variable "notifications_topic_name" {
  description = "Name of the notifications topic."
  type        = string
}

variable "wakeups_topic_name" {
  description = "Name of the wake-up topic (one bodiless message per ended operation, followed by waits)."
  type        = string
}

variable "dead_letter_topic_name" {
  description = "Name of the dead-letter topic."
  type        = string
}

variable "event_retention_seconds" {
  description = "How long the events topic keeps published messages, in seconds (replay by seek)."
  type        = number
  default     = 604800

  validation {
    condition     = var.event_retention_seconds >= 600 && var.event_retention_seconds <= 2678400
    error_message = "event_retention_seconds must be between 600 and 2678400."
  }
}

variable "dead_letter_retention_seconds" {
  description = "How long the dead-letter topic keeps messages, in seconds (replay by seek)."
  type        = number
  default     = 2678400

  validation {
    condition     = var.dead_letter_retention_seconds >= 600 && var.dead_letter_retention_seconds <= 2678400
    error_message = "dead_letter_retention_seconds must be between 600 and 2678400."
  }
}

variable "labels" {
  description = "Labels of the topics and subscriptions."
  type        = map(string)
  default     = {}
}

variable "event_publishers" {
  description = "Principals that publish worker events, keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "notification_publishers" {
  description = "Principals that publish notifications (the subscriber and the API), keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "notification_listeners" {
  description = "Principals that attach their own subscriptions to the notifications topic, keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "wakeup_publishers" {
  description = "Principals that publish wake-ups (the subscriber, the sweeper and the API), keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "wakeup_listeners" {
  description = "Principals that attach their own subscriptions to the wake-up topic, keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "dead_letter_publishers" {
  description = "Principals that publish to the dead-letter topic, keyed by a static name."
  type        = map(string)
  default     = {}
}

resource "google_pubsub_topic" "events" {
  project                    = var.project_id
  name                       = var.events_topic_name
  labels                     = var.labels
  message_retention_duration = "${var.event_retention_seconds}s"
}

resource "google_pubsub_topic" "notifications" {
  project = var.project_id
  name    = var.notifications_topic_name
  labels  = var.labels
}

# No retention: a wake-up is useful only to the waits listening when it is published.
resource "google_pubsub_topic" "wakeups" {
  project = var.project_id
  name    = var.wakeups_topic_name
  labels  = var.labels
}

resource "google_pubsub_topic" "dead_letter" {
  project                    = var.project_id
  name                       = var.dead_letter_topic_name
  labels                     = var.labels
  message_retention_duration = "${var.dead_letter_retention_seconds}s"
}

# Nothing dead-lettered is lost: this subscription holds every message for 7 days (the most a
# subscription allows) and never expires; the topic's own retention allows a replay by seek for
# longer.
resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.dead_letter_topic_name}-hold"
  topic                      = google_pubsub_topic.dead_letter.id
  labels                     = var.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = true

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "event_publisher" {
  for_each = var.event_publishers

  project = var.project_id
  topic   = google_pubsub_topic.events.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}

resource "google_pubsub_topic_iam_member" "notification_publisher" {
  for_each = var.notification_publishers

  project = var.project_id
  topic   = google_pubsub_topic.notifications.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}

# roles/pubsub.subscriber on a topic allows attaching subscriptions to it. Creating the
# subscription itself is granted in infra/identities. No roles/pubsub.viewer: the code never reads
# the topic's metadata (its reachability probe takes a permission-denied answer as an answer).
resource "google_pubsub_topic_iam_member" "notification_listener_attach" {
  for_each = var.notification_listeners

  project = var.project_id
  topic   = google_pubsub_topic.notifications.name
  role    = "roles/pubsub.subscriber"
  member  = each.value
}

resource "google_pubsub_topic_iam_member" "wakeup_publisher" {
  for_each = var.wakeup_publishers

  project = var.project_id
  topic   = google_pubsub_topic.wakeups.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}

resource "google_pubsub_topic_iam_member" "wakeup_listener_attach" {
  for_each = var.wakeup_listeners

  project = var.project_id
  topic   = google_pubsub_topic.wakeups.name
  role    = "roles/pubsub.subscriber"
  member  = each.value
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = var.dead_letter_publishers

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}

output "events_topic_name" {
  description = "Name of the events topic."
  value       = google_pubsub_topic.events.name
}

output "events_topic_id" {
  description = "Full resource name of the events topic."
  value       = google_pubsub_topic.events.id
}

output "notifications_topic_name" {
  description = "Name of the notifications topic."
  value       = google_pubsub_topic.notifications.name
}

output "wakeups_topic_name" {
  description = "Name of the wake-up topic."
  value       = google_pubsub_topic.wakeups.name
}

output "dead_letter_topic_name" {
  description = "Name of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.name
}

output "dead_letter_topic_id" {
  description = "Full resource name of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription_name" {
  description = "Name of the subscription that keeps dead-lettered messages."
  value       = google_pubsub_subscription.dead_letter.name
}
