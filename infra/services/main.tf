# The Google Cloud APIs the configuration uses, enabled by Terraform so that `terraform apply` alone
# works on an empty project. They stay enabled on destroy (other workloads of the project may use
# them, and disabling an API can take its data with it).
#
# Service Usage (serviceusage.googleapis.com), which enables the others, must already be enabled:
# it is on every new project.
#
# An enabled API answers only after a short propagation delay; the wait below keeps the first
# calls of the other modules from failing with "API has not been used in project ... before or it
# is disabled".

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

output "services" {
  description = "The enabled API service names, available once the propagation wait is over."
  value       = sort([for s in google_project_service.this : s.service])
  depends_on  = [time_sleep.propagation]
}
