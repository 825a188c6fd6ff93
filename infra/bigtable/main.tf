# The operations store: one instance, one table, one app profile.
#
# Column families: `s` holds the operation state, `i` the index rows (children, request IDs).
# Both are collected by age: finished operations' cells carry their completion time as timestamp
# and running operations' cells a far-future one, so a max-age rule equal to the retention removes
# exactly the finished operations that expired (the service also checks expiry when reading, since
# garbage collection is lazy). Only the newest version of a cell is kept.
#
# The functions use an app profile with single-cluster routing and transactional writes, which
# CheckAndMutateRow (terminal-once updates, unique IDs) requires.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

variable "project_id" {
  description = "Project of the Bigtable instance."
  type        = string
}

variable "instance_name" {
  description = "ID of the Bigtable instance."
  type        = string
}

variable "table_name" {
  description = "Name of the operations table."
  type        = string
}

variable "zone" {
  description = "Zone of the single cluster."
  type        = string
}

variable "storage_type" {
  description = "Storage type of the cluster: SSD or HDD."
  type        = string
  default     = "SSD"

  validation {
    condition     = contains(["SSD", "HDD"], var.storage_type)
    error_message = "storage_type must be SSD or HDD."
  }
}

variable "num_nodes" {
  description = "Fixed node count; ignored when autoscaling is set."
  type        = number
  default     = 1
}

variable "autoscaling" {
  description = "Autoscaling limits and CPU target in percent; null for a fixed node count."
  type = object({
    min_nodes  = number
    max_nodes  = number
    cpu_target = optional(number, 60)
  })
  default = null
}

variable "app_profile_id" {
  description = "ID of the transactional app profile."
  type        = string
}

variable "retention_seconds" {
  description = "Age after which finished operations' cells are garbage-collected, in seconds."
  type        = number

  validation {
    condition     = var.retention_seconds >= 3600
    error_message = "retention_seconds must be at least 3600."
  }
}

variable "deletion_protection" {
  description = "Protects the instance and the table from terraform destroy."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels of the instance."
  type        = map(string)
  default     = {}
}

variable "data_user_members" {
  description = "Principals that read and write operations (roles/bigtable.user on the instance), keyed by a static name so that plans work before the principals exist."
  type        = map(string)
  default     = {}
}

locals {
  cluster_id = "${substr(var.instance_name, 0, 27)}-c1"

  # Both families: a cell goes once it is older than the retention OR once a newer version of it
  # exists. Written as gc_rules: the provider's max_age, max_version and mode fields have known
  # drift, and its documentation prefers gc_rules (which recent versions compare by meaning, so
  # the "30d" read back equals the "2592000s" written).
  gc_rules = jsonencode({
    mode  = "union"
    rules = [{ max_age = "${var.retention_seconds}s" }, { max_version = 1 }]
  })

  # The event history keeps the last 200 versions of each column, as long as the operation.
  history_gc_rules = jsonencode({
    mode  = "union"
    rules = [{ max_age = "${var.retention_seconds}s" }, { max_version = 200 }]
  })
}

resource "google_bigtable_instance" "this" {
  project             = var.project_id
  name                = var.instance_name
  display_name        = "Long-running operations"
  deletion_protection = var.deletion_protection
  labels              = var.labels

  cluster {
    cluster_id   = local.cluster_id
    zone         = var.zone
    storage_type = var.storage_type
    num_nodes    = var.autoscaling == null ? var.num_nodes : null

    dynamic "autoscaling_config" {
      for_each = var.autoscaling == null ? [] : [var.autoscaling]
      content {
        min_nodes  = autoscaling_config.value.min_nodes
        max_nodes  = autoscaling_config.value.max_nodes
        cpu_target = autoscaling_config.value.cpu_target
      }
    }
  }
}

resource "google_bigtable_table" "operations" {
  project             = var.project_id
  instance_name       = google_bigtable_instance.this.name
  name                = var.table_name
  deletion_protection = var.deletion_protection ? "PROTECTED" : "UNPROTECTED"

  column_family {
    family = "s"
  }

  column_family {
    family = "i"
  }

  column_family {
    family = "h"
  }
}

# Operation state.
resource "google_bigtable_gc_policy" "state" {
  project         = var.project_id
  instance_name   = google_bigtable_instance.this.name
  table           = google_bigtable_table.operations.name
  column_family   = "s"
  deletion_policy = "ABANDON"
  gc_rules        = local.gc_rules
}

# Children and request-ID index rows.
resource "google_bigtable_gc_policy" "index" {
  project         = var.project_id
  instance_name   = google_bigtable_instance.this.name
  table           = google_bigtable_table.operations.name
  column_family   = "i"
  deletion_policy = "ABANDON"
  gc_rules        = local.gc_rules
}

# Event history of each operation (shared/service/store/event-history.ts): the last 200 versions of
# each column, in the operation's row, expiring with it.
resource "google_bigtable_gc_policy" "history" {
  project         = var.project_id
  instance_name   = google_bigtable_instance.this.name
  table           = google_bigtable_table.operations.name
  column_family   = "h"
  deletion_policy = "ABANDON"
  gc_rules        = local.history_gc_rules
}

resource "google_bigtable_app_profile" "transactional" {
  project         = var.project_id
  instance        = google_bigtable_instance.this.name
  app_profile_id  = var.app_profile_id
  description     = "Single-cluster routing with transactional writes, for CheckAndMutateRow."
  ignore_warnings = true

  single_cluster_routing {
    cluster_id                 = local.cluster_id
    allow_transactional_writes = true
  }
}

# Granted on the instance, which holds nothing but this service's table: the functions need the
# table's data and the app profile, and the instance is the narrowest scope covering both.
resource "google_bigtable_instance_iam_member" "data_user" {
  for_each = var.data_user_members

  project  = var.project_id
  instance = google_bigtable_instance.this.name
  role     = "roles/bigtable.user"
  member   = each.value
}

output "instance_name" {
  description = "ID of the Bigtable instance."
  value       = google_bigtable_instance.this.name
}

output "table_name" {
  description = "Name of the operations table."
  value       = google_bigtable_table.operations.name
}

output "app_profile_id" {
  description = "ID of the transactional app profile."
  value       = google_bigtable_app_profile.transactional.app_profile_id
}
