# The pull subscriber (subscriber_delivery = "pull"): the entry point `subscriberPull` of the same
# build, on an always-on Cloud Run service that streams the events subscription and the dead-letter
# store subscription (both pull subscriptions in this mode) into the subscriber's handlers. No
# request per event: the instances are billed for their time instead (docs/capacity.md, "Under $5
# per million at 100,000 a minute", says from which load that is cheaper).
#
# - Always on: CPU always allocated (cpu_idle = false, instance-based billing), at least one
#   instance (min_instances), so the streams keep pulling without requests. Cloud Run scales the
#   instances between min and max on their CPU use.
# - Built from source: a Terraform google_cloud_run_v2_service does not build its build_config
#   source (hashicorp/terraform-provider-google#22263, #23057; the block only records how an image
#   was built), and a Cloud Function cannot have CPU always allocated. So the image is the one
#   Cloud Build made of the deployed archive for the subscriber function (infra/functions), read
#   from that function's Cloud Run service: the archive holds every entry point, and this service
#   selects `subscriberPull` with FUNCTION_TARGET (the functions framework reads it when no
#   --target flag is given). The subscriber function stays deployed, scaled to zero and pushed
#   nothing, which also makes switching back to push a plain apply. A new archive rebuilds the
#   function and rolls a new revision here (the source object is a template annotation).
# - Private: internal ingress, and no principal may invoke it (the status endpoint answers
#   Cloud Run's own probes, which need no invoker role).
# - Runs as the subscriber's service account, which in this mode may consume the two
#   subscriptions (infra/push-subscription, infra/dead-letter-store), and publishes and uses
#   Bigtable as the push subscriber does.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

variable "project_id" {
  description = "Project of the service."
  type        = string
}

variable "region" {
  description = "Region of the service."
  type        = string
}

variable "name" {
  description = "Name of the Cloud Run service."
  type        = string
}

variable "labels" {
  description = "Labels of the service."
  type        = map(string)
  default     = {}
}

variable "built_function_name" {
  description = "Name of the function whose build of the deployed archive this service runs (the subscriber function; its Cloud Run service has the same name)."
  type        = string
}

variable "source_object" {
  description = "Object name of the deployed archive (a new one rolls a new revision)."
  type        = string
}

variable "service_account" {
  description = "Email of the runtime service account (the subscriber's)."
  type        = string
}

variable "environment" {
  description = "Environment of the subscriber function, given to the pull subscriber as well (names from shared/service/runtime/config.ts)."
  type        = map(string)
}

variable "events_subscription" {
  description = "Name of the events topic's subscription the service pulls (LRO_EVENTS_SUBSCRIPTION); the dead-letter store subscription follows its naming convention."
  type        = string
}

variable "min_instances" {
  description = "Instances always running (at least 1: nothing else wakes a pull subscriber)."
  type        = number
  default     = 1

  validation {
    condition     = var.min_instances >= 1 && floor(var.min_instances) == var.min_instances
    error_message = "min_instances must be a whole number of at least 1."
  }
}

variable "max_instances" {
  description = "Most instances."
  type        = number
  default     = 10

  validation {
    condition     = var.max_instances >= var.min_instances
    error_message = "max_instances must be at least min_instances."
  }
}

variable "memory" {
  description = "Memory of an instance."
  type        = string
  default     = "768Mi"
}

# The image must be read once the function's build of the current archive is done. A data source
# whose arguments are all known is read while planning, before anything is applied: on a first
# apply the function's service would not exist yet, and on a new archive it would give the
# previous build's image. So its name comes through this resource, which is applied after the
# function (its input names it) and whose output is unknown while planning a change of the archive
# (and on the first apply): the read then waits for the apply. With nothing changed, the output is
# known and a second plan shows no change.
resource "terraform_data" "build" {
  input = {
    function = var.built_function_name
    source   = var.source_object
  }
}

data "google_cloud_run_v2_service" "built" {
  project  = var.project_id
  location = var.region
  name     = terraform_data.build.output.function
}

resource "google_cloud_run_v2_service" "pull" {
  project             = var.project_id
  location            = var.region
  name                = var.name
  description         = "Pulls worker events and dead letters into the subscriber's handlers (entry point subscriberPull)."
  labels              = var.labels
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = false

  template {
    service_account = var.service_account
    # Only Cloud Run's probes call it; the work does not come in requests.
    max_instance_request_concurrency = 10
    timeout                          = "30s"
    annotations = {
      "lro/source-object" = var.source_object
    }

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    containers {
      image = data.google_cloud_run_v2_service.built.template[0].containers[0].image

      resources {
        # CPU always allocated (instance-based billing): the streams run between requests.
        cpu_idle          = false
        startup_cpu_boost = true
        limits = {
          cpu    = "1"
          memory = var.memory
        }
      }

      env {
        name  = "FUNCTION_TARGET"
        value = "subscriberPull"
      }

      env {
        name  = "LRO_EVENTS_SUBSCRIPTION"
        value = var.events_subscription
      }

      dynamic "env" {
        for_each = var.environment
        content {
          name  = env.key
          value = env.value
        }
      }

      # The status endpoint answers 200 while the runner pulls.
      startup_probe {
        http_get {
          path = "/"
        }
      }

      liveness_probe {
        period_seconds    = 30
        failure_threshold = 3
        http_get {
          path = "/"
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = !contains(keys(var.environment), "FUNCTION_TARGET") && !contains(keys(var.environment), "LRO_EVENTS_SUBSCRIPTION")
      error_message = "environment must not set FUNCTION_TARGET or LRO_EVENTS_SUBSCRIPTION: this module sets them."
    }
  }
}

output "name" {
  description = "Name of the pull subscriber's Cloud Run service."
  value       = google_cloud_run_v2_service.pull.name
}

output "uri" {
  description = "URL of the pull subscriber's status endpoint (internal)."
  value       = google_cloud_run_v2_service.pull.uri
}
