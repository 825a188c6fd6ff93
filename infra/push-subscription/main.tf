# Delivery of worker events to the subscriber: the events topic's subscription, a push subscription
# to the subscriber function, or with delivery = "pull" a pull subscription read by the pull
# subscriber (infra/subscriber-pull), with the same retry, dead-letter and retention policies. The
# subscription keeps its name either way, so switching modes updates it in place and no event is
# lost; in pull mode the pull subscriber's account may consume it.
#
# - Authenticated: Pub/Sub signs every request with an OIDC token of the push service account,
#   the only principal allowed to invoke the subscriber.
# - Retried: a failed delivery (transient error, e.g. Bigtable unavailable) comes back with
#   exponential backoff; the subscriber acknowledges permanent failures itself after copying them
#   to the dead-letter topic.
# - Dead-lettered: after max_delivery_attempts Pub/Sub moves the event to the dead-letter topic,
#   so nothing is retried forever and nothing is dropped silently.
# - Unordered: the subscriber does not depend on delivery order (newest metadata by emitTime,
#   terminal once), while ordering would let one failing event hold back every later event of its
#   operation until it is dead-lettered, and cap push concurrency per operation. Ordering keys on
#   published messages are ignored by an unordered subscription.
# - Never expires, whatever the traffic.
#
# Dead-lettering and push authentication act as the Pub/Sub service agent of the project, which
# needs the grants at the end of this file.

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

variable "name" {
  description = "Name of the push subscription."
  type        = string
}

variable "events_topic_id" {
  description = "Full resource name of the events topic."
  type        = string
}

variable "dead_letter_topic_id" {
  description = "Full resource name of the dead-letter topic."
  type        = string
}

variable "delivery" {
  description = "How events reach the subscriber: push (to push_endpoint) or pull (read by pull_subscriber_member)."
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

variable "push_endpoint" {
  description = "HTTPS URL of the subscriber function; the audience of the OIDC token, and the push endpoint with the topic path (/projects/P/topics/T) appended."
  type        = string
}

variable "push_service_account_email" {
  description = "Email of the service account whose OIDC token authenticates the deliveries."
  type        = string
}

variable "push_service_account_id" {
  description = "Full resource name of the push service account."
  type        = string
}

variable "pubsub_service_agent" {
  description = "IAM member of the project's Pub/Sub service agent (serviceAccount:service-NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com)."
  type        = string

  validation {
    condition     = can(regex("^serviceAccount:service-[0-9]+@gcp-sa-pubsub\\.iam\\.gserviceaccount\\.com$", var.pubsub_service_agent))
    error_message = "pubsub_service_agent must be serviceAccount:service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com."
  }
}

variable "ack_deadline_seconds" {
  description = "Time the subscriber has to answer one delivery, in seconds."
  type        = number
  default     = 60

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be between 10 and 600."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries before an event is dead-lettered."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "retry_minimum_backoff_seconds" {
  description = "Shortest redelivery delay, in seconds."
  type        = number
  default     = 5
}

variable "retry_maximum_backoff_seconds" {
  description = "Longest redelivery delay, in seconds."
  type        = number
  default     = 300
}

variable "message_retention_seconds" {
  description = "How long undelivered events are kept, in seconds."
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

resource "google_pubsub_subscription" "push" {
  project                    = var.project_id
  name                       = var.name
  topic                      = var.events_topic_id
  labels                     = var.labels
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = "${var.message_retention_seconds}s"
  enable_message_ordering    = false

  # Push mode only; without a push config the subscription is a pull subscription.
  dynamic "push_config" {
    for_each = var.delivery == "push" ? [var.push_endpoint] : []
    content {
      # The topic path after the URL, as local provisioning does: the functions framework reads
      # the topic of the CloudEvent from it (without it, it logs "Failed to extract the topic name").
      push_endpoint = "${push_config.value}/${var.events_topic_id}"

      oidc_token {
        service_account_email = var.push_service_account_email
        audience              = push_config.value
      }
    }
  }

  retry_policy {
    minimum_backoff = "${var.retry_minimum_backoff_seconds}s"
    maximum_backoff = "${var.retry_maximum_backoff_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = var.dead_letter_topic_id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_pubsub_topic_iam_member.service_agent_dead_letter_publisher,
    google_service_account_iam_member.service_agent_token_creator,
  ]

  lifecycle {
    precondition {
      condition     = var.delivery == "push" || var.pull_subscriber_member != null
      error_message = "delivery = \"pull\" needs pull_subscriber_member, the account that pulls the events."
    }
  }
}

# Pull mode: the pull subscriber's account consumes (pulls, acks, nacks) this subscription alone.
resource "google_pubsub_subscription_iam_member" "pull_subscriber" {
  count = var.delivery == "pull" ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.push.name
  role         = "roles/pubsub.subscriber"
  member       = var.pull_subscriber_member
}

# Dead-lettering: the service agent forwards from this subscription to the dead-letter topic.
resource "google_pubsub_topic_iam_member" "service_agent_dead_letter_publisher" {
  project = var.project_id
  topic   = var.dead_letter_topic_id
  role    = "roles/pubsub.publisher"
  member  = var.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "service_agent_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.push.name
  role         = "roles/pubsub.subscriber"
  member       = var.pubsub_service_agent
}

# Push authentication: in projects created before April 2021 the service agent needs this role
# to mint OIDC tokens for the push service account; granting it on that one account is harmless
# elsewhere.
resource "google_service_account_iam_member" "service_agent_token_creator" {
  service_account_id = var.push_service_account_id
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = var.pubsub_service_agent
}

output "name" {
  description = "Name of the events subscription (push or pull)."
  value       = google_pubsub_subscription.push.name
}

output "id" {
  description = "Full resource name of the push subscription."
  value       = google_pubsub_subscription.push.id
}
