# Keeping dead letters: a push subscription on the dead-letter topic to the subscriber function,
# which stores every message in Bigtable (rows of their own in the operations table, expiring
# with the retention) so that the API can list, show, replay and discard them.
#
# - The endpoint's path names the dead-letter topic (/projects/P/topics/T): the functions
#   framework reads it, and the subscriber stores such deliveries instead of applying them. The
#   subscription's name ends in "-store", which the subscriber recognises too.
# - Authenticated like the events push: an OIDC token of the push service account, the only
#   principal that may invoke the subscriber; the audience is the function's URL.
# - A failed store write fails the delivery: Pub/Sub retries with backoff and, with no
#   dead-letter policy of its own, keeps the message until it is stored (up to the retention).
# - Never expires, whatever the traffic.
# - With delivery = "pull" it is a pull subscription of the same name and policies, read by the
#   pull subscriber (infra/subscriber-pull), whose account alone may consume it.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

variable "project_id" {
  description = "Project of the subscription."
  type        = string
}

variable "dead_letter_topic_id" {
  description = "Full resource name of the dead-letter topic."
  type        = string
}

variable "dead_letter_topic_name" {
  description = "Short name of the dead-letter topic (the subscription is named after it)."
  type        = string
}

variable "delivery" {
  description = "How dead letters reach the subscriber: push (to subscriber_uri) or pull (read by pull_subscriber_member)."
  type        = string
  default     = "push"

  validation {
    condition     = contains(["push", "pull"], var.delivery)
    error_message = "delivery must be push or pull."
  }
}

variable "pull_subscriber_member" {
  description = "IAM member that pulls the subscription in pull mode (the subscriber's runtime account); null in push mode."
  type        = string
  default     = null
}

variable "subscriber_uri" {
  description = "HTTPS URL of the subscriber function; also the audience of the OIDC token."
  type        = string
}

variable "push_service_account_email" {
  description = "Email of the service account whose OIDC token authenticates the deliveries."
  type        = string
}

variable "ack_deadline_seconds" {
  description = "Time the subscriber has to store one message, in seconds."
  type        = number
  default     = 60

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be between 10 and 600."
  }
}

variable "message_retention_seconds" {
  description = "How long messages not yet stored are kept, in seconds."
  type        = number
  default     = 604800

  validation {
    condition     = var.message_retention_seconds >= 600 && var.message_retention_seconds <= 604800
    error_message = "message_retention_seconds must be between 600 and 604800."
  }
}

variable "labels" {
  description = "Labels of the subscription."
  type        = map(string)
  default     = {}
}

resource "google_pubsub_subscription" "store" {
  project                    = var.project_id
  name                       = "${var.dead_letter_topic_name}-store"
  topic                      = var.dead_letter_topic_id
  labels                     = var.labels
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = "${var.message_retention_seconds}s"

  # Push mode only; without a push config the subscription is a pull subscription.
  dynamic "push_config" {
    for_each = var.delivery == "push" ? [var.subscriber_uri] : []
    content {
      push_endpoint = "${trimsuffix(push_config.value, "/")}/projects/${var.project_id}/topics/${var.dead_letter_topic_name}"

      oidc_token {
        service_account_email = var.push_service_account_email
        audience              = push_config.value
      }
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }

  lifecycle {
    precondition {
      condition     = var.delivery == "push" || var.pull_subscriber_member != null
      error_message = "delivery = \"pull\" needs pull_subscriber_member, the account that pulls the dead letters."
    }
  }
}

# Pull mode: the pull subscriber's account consumes this subscription alone.
resource "google_pubsub_subscription_iam_member" "pull_subscriber" {
  count = var.delivery == "pull" ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.store.name
  role         = "roles/pubsub.subscriber"
  member       = var.pull_subscriber_member
}

output "name" {
  description = "Name of the subscription (push or pull) whose messages the subscriber stores as dead letters."
  value       = google_pubsub_subscription.store.name
}
