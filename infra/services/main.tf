# The Google Cloud APIs the configuration uses, enabled by Terraform so that `terraform apply` alone
# works on an empty project. They stay enabled on destroy (other workloads of the project may use
# them, and disabling an API can take its data with it).
#
# Service Usage (serviceusage.googleapis.com), which enables the others, must already be enabled:
# it is on every new project.
#
# An enabled API answers only after a short propagation delay; the wait below keeps the first
# calls of the other modules from failing with "API has not been used in project ... before or it
# is disabled". The other modules wait for it through the project_id output, which is available
# only after the wait (a module-level depends_on would defer their data sources instead, and make
# later plans replace what is built from them).
#
# Enabling an API does not always create its service agent at once, and a grant to an agent that
# does not exist yet fails (Google's "Create and grant roles to service agents"): the Pub/Sub
# service agent, which the push subscription's grants name, is created here explicitly
# (google_project_service_identity, in the google-beta provider only).

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
    google-beta = {
      source = "hashicorp/google-beta"
    }
    time = {
      source = "hashicorp/time"
    }
  }
}

variable "project_id" {
  description = "Project whose APIs are enabled."
  type        = string
}

variable "services" {
  description = "API service names to enable, e.g. pubsub.googleapis.com."
  type        = set(string)

  validation {
    condition     = alltrue([for s in var.services : can(regex("^[a-z0-9.-]+\\.googleapis\\.com$", s))])
    error_message = "Every service must be an API service name such as pubsub.googleapis.com."
  }
  validation {
    condition     = contains(var.services, "pubsub.googleapis.com")
    error_message = "services must include pubsub.googleapis.com: its service agent is created here."
  }
}

variable "propagation_seconds" {
  description = "Wait after enabling, in seconds, before resources that need the APIs are created."
  type        = number
  default     = 60
}

resource "google_project_service" "this" {
  for_each = var.services

  project                    = var.project_id
  service                    = each.value
  disable_on_destroy         = false
  disable_dependent_services = false
}

resource "time_sleep" "propagation" {
  create_duration = "${var.propagation_seconds}s"

  # Waits again only when the set of APIs changes.
  triggers = {
    services = join(",", sort([for s in google_project_service.this : s.service]))
  }
}

# Creating it again is harmless (the API returns the existing agent); destroying it is a no-op.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [time_sleep.propagation]
}

output "project_id" {
  description = "The project ID, available once the APIs are enabled and have propagated: every other module takes its project_id from here, which orders it after the APIs without a module-level depends_on."
  value       = var.project_id
  depends_on  = [time_sleep.propagation]
}

output "pubsub_service_agent" {
  description = "IAM member of the project's Pub/Sub service agent (serviceAccount:service-NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com), once it exists."
  value       = google_project_service_identity.pubsub.member
}

output "services" {
  description = "The enabled API service names, available once the propagation wait is over."
  value       = sort([for s in google_project_service.this : s.service])
  depends_on  = [time_sleep.propagation]
}
