# Root module: deploys the long-running operations service into one Google Cloud project.
#
#   worker --publish--> events topic --push (OIDC)--> subscriber function --> Bigtable
#                                                           |
#                                                           +--> notifications topic
#   (subscriber_delivery = "pull": the pull subscriber, an always-on Cloud Run service, pulls
#   the events instead of receiving pushes)
#   caller --HTTP (ID token)--> operations function --> Bigtable, notifications topic
#
# Build first (`npm ci && npm run build`): the functions are deployed from `dist/`. The walkthrough
# from an empty project to a working API URL is in docs/deploy.md.

terraform {
  required_version = ">= 1.9"

  # State lives in a versioned Cloud Storage bucket, never on one machine: losing it would leave a
  # Bigtable instance (deletion protection on) and a dozen named resources that Terraform no longer
  # knows, which it could then neither update nor destroy. The bucket is created once by hand and
  # named at init: terraform init -backend-config="bucket=BUCKET" (docs/deploy.md, step 2).
  backend "gcs" {
    prefix = "cloud-lro"
  }

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.20, < 7.0"
    }
    # google_project_service_identity (the Pub/Sub service agent) exists only in the beta provider.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.20, < 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4, < 3.0"
    }
    time = {
      source  = "hashicorp/time"
      version = ">= 0.9, < 1.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

# ---------------------------------------------------------------------------------------------
# Variables
# ---------------------------------------------------------------------------------------------

variable "project_id" {
  description = "ID of the Google Cloud project to deploy into."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6 to 30 lowercase letters, digits and hyphens)."
  }
}

variable "region" {
  description = "Region of the functions, the source bucket and the default Bigtable zone."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (service accounts, topics, functions, bucket)."
  type        = string
  default     = "lro"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3 to 16 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

variable "api_invoker_members" {
  description = "Principals allowed to call the HTTP API (roles/run.invoker), e.g. \"serviceAccount:backend@my-project.iam.gserviceaccount.com\" or \"group:ops@example.com\". Public access is refused."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.api_invoker_members : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "api_invoker_members must not contain allUsers or allAuthenticatedUsers: the API is never public."
  }
  validation {
    condition     = alltrue([for m in var.api_invoker_members : can(regex("^(user|group|serviceAccount|domain|principal|principalSet):.+$", m))])
    error_message = "Every member must be an IAM principal such as user:, group:, serviceAccount:, domain:, principal: or principalSet:."
  }
}

variable "event_publisher_members" {
  description = "Extra principals allowed to publish worker events (the worker service account created here always may)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.event_publisher_members : can(regex("^(user|group|serviceAccount|principal|principalSet):.+$", m))])
    error_message = "Every member must be an IAM principal such as serviceAccount:, group:, user:, principal: or principalSet: (allUsers and allAuthenticatedUsers are refused)."
  }
}

# Bigtable

variable "bigtable_instance_name" {
  description = "ID of the Bigtable instance created for the operations (6 to 33 characters)."
  type        = string
  default     = "lro-operations"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,31}[a-z0-9]$", var.bigtable_instance_name))
    error_message = "bigtable_instance_name must be 6 to 33 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "bigtable_table_name" {
  description = "Name of the operations table."
  type        = string
  default     = "operations"

  validation {
    condition     = can(regex("^[-_.a-zA-Z0-9]{1,50}$", var.bigtable_table_name))
    error_message = "bigtable_table_name must be 1 to 50 letters, digits, hyphens, underscores or dots."
  }
}

variable "bigtable_zone" {
  description = "Zone of the Bigtable cluster; defaults to zone b of the region."
  type        = string
  default     = null

  validation {
    condition     = var.bigtable_zone == null || can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.bigtable_zone))
    error_message = "bigtable_zone must be a zone such as europe-west1-b."
  }
}

variable "bigtable_storage_type" {
  description = "Storage type of the Bigtable cluster: SSD or HDD."
  type        = string
  default     = "SSD"

  validation {
    condition     = contains(["SSD", "HDD"], var.bigtable_storage_type)
    error_message = "bigtable_storage_type must be SSD or HDD."
  }
}

variable "bigtable_num_nodes" {
  description = "Fixed node count of the Bigtable cluster; ignored when bigtable_autoscaling is set."
  type        = number
  default     = 1

  validation {
    condition     = var.bigtable_num_nodes >= 1 && floor(var.bigtable_num_nodes) == var.bigtable_num_nodes
    error_message = "bigtable_num_nodes must be a whole number of at least 1."
  }
}

variable "bigtable_autoscaling" {
  description = "Autoscaling of the Bigtable cluster (min and max nodes, CPU target in percent); null for a fixed node count."
  type = object({
    min_nodes  = number
    max_nodes  = number
    cpu_target = optional(number, 60)
  })
  default = null

  validation {
    condition = var.bigtable_autoscaling == null || (
      try(var.bigtable_autoscaling.min_nodes >= 1 && var.bigtable_autoscaling.max_nodes >= var.bigtable_autoscaling.min_nodes, false) &&
      try(var.bigtable_autoscaling.cpu_target >= 10 && var.bigtable_autoscaling.cpu_target <= 80, false)
    )
    error_message = "bigtable_autoscaling needs 1 <= min_nodes <= max_nodes and a cpu_target between 10 and 80."
  }
}

variable "bigtable_app_profile_id" {
  description = "ID of the app profile the functions use (single-cluster routing with transactional writes)."
  type        = string
  default     = "lro-transactional"

  validation {
    condition     = can(regex("^[_a-zA-Z0-9][-_.a-zA-Z0-9]{0,49}$", var.bigtable_app_profile_id))
    error_message = "bigtable_app_profile_id must be 1 to 50 letters, digits, hyphens, underscores or dots."
  }
}

variable "deletion_protection" {
  description = "Protects the Bigtable instance and table from terraform destroy."
  type        = bool
  default     = true
}

# Operations

variable "retention_seconds" {
  description = "How long finished operations are kept, in seconds (AIP-151 suggests 30 days). Used by the Bigtable garbage collection and by the read-time expiry check."
  type        = number
  default     = 2592000

  validation {
    condition     = var.retention_seconds >= 3600 && floor(var.retention_seconds) == var.retention_seconds
    error_message = "retention_seconds must be a whole number of at least 3600."
  }
}

variable "row_key_prefix" {
  description = "Row-key prefix in the operations table, so that several deployments can share one table."
  type        = string
  default     = ""

  validation {
    condition     = length(var.row_key_prefix) <= 64 && can(regex("^[A-Za-z0-9_.:/-]*$", var.row_key_prefix))
    error_message = "row_key_prefix must be at most 64 letters, digits or _ . : / - characters."
  }
}

variable "wait_timeout_default_seconds" {
  description = "Wait timeout when the request gives none, in seconds."
  type        = number
  default     = 30

  validation {
    condition     = var.wait_timeout_default_seconds >= 1 && var.wait_timeout_default_seconds <= var.wait_timeout_max_seconds
    error_message = "wait_timeout_default_seconds must be between 1 and wait_timeout_max_seconds."
  }
}

variable "wait_timeout_max_seconds" {
  description = "Cap of any requested wait timeout, in seconds; must stay below api_timeout_seconds so that a wait returns before the platform cuts the request."
  type        = number
  default     = 300

  validation {
    condition     = var.wait_timeout_max_seconds >= 1 && var.wait_timeout_max_seconds + 10 <= var.api_timeout_seconds
    error_message = "wait_timeout_max_seconds must be at least 1 and at least 10 seconds below api_timeout_seconds."
  }
}

variable "page_token_secret_id" {
  description = "Secret Manager secret (ID or full name) holding the key that signs page tokens; the version in page_token_secret_version is mounted as LRO_PAGE_TOKEN_KEY. Null derives a key from the deployment's names, which is predictable."
  type        = string
  default     = null

  validation {
    condition     = var.page_token_secret_id == null || can(regex("^(projects/[^/]+/secrets/)?[A-Za-z0-9_-]{1,255}$", var.page_token_secret_id))
    error_message = "page_token_secret_id must be a secret ID or projects/PROJECT/secrets/ID."
  }
}

# A secret passed as an environment variable is read when an instance starts. With "latest",
# instances started before and after a new version was added would sign page tokens with
# different keys, and a token from one would be refused by another. A pinned version changes only
# with an apply, which rolls every instance to a new revision at once (docs/deploy.md, rotation).
variable "page_token_secret_version" {
  description = "Version number of page_token_secret_id to mount (e.g. \"1\"); required when page_token_secret_id is set, never \"latest\"."
  type        = string
  default     = null

  validation {
    condition     = var.page_token_secret_id == null || can(regex("^[1-9][0-9]*$", coalesce(var.page_token_secret_version, "-")))
    error_message = "page_token_secret_version must be the secret version's number (e.g. \"1\", not \"latest\") when page_token_secret_id is set."
  }
}

# Pub/Sub

variable "max_delivery_attempts" {
  description = "Deliveries of one event to the subscriber function before Pub/Sub moves it to the dead-letter topic."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (the Pub/Sub limits)."
  }
}

variable "retry_minimum_backoff_seconds" {
  description = "Shortest delay before Pub/Sub redelivers an event the subscriber failed."
  type        = number
  default     = 5

  validation {
    condition     = var.retry_minimum_backoff_seconds >= 0 && var.retry_minimum_backoff_seconds <= 600
    error_message = "retry_minimum_backoff_seconds must be between 0 and 600."
  }
}

variable "retry_maximum_backoff_seconds" {
  description = "Longest delay before Pub/Sub redelivers an event the subscriber failed."
  type        = number
  default     = 300

  validation {
    condition     = var.retry_maximum_backoff_seconds >= var.retry_minimum_backoff_seconds && var.retry_maximum_backoff_seconds <= 600
    error_message = "retry_maximum_backoff_seconds must be between retry_minimum_backoff_seconds and 600."
  }
}

variable "event_retention_seconds" {
  description = "How long undelivered events are kept by the push subscription (and published events by the events topic), in seconds."
  type        = number
  default     = 604800

  validation {
    condition     = var.event_retention_seconds >= 600 && var.event_retention_seconds <= 604800
    error_message = "event_retention_seconds must be between 600 (10 minutes) and 604800 (7 days)."
  }
}

variable "dead_letter_retention_seconds" {
  description = "How long the dead-letter topic keeps messages (for replay with seek), in seconds."
  type        = number
  default     = 2678400

  validation {
    condition     = var.dead_letter_retention_seconds >= 600 && var.dead_letter_retention_seconds <= 2678400
    error_message = "dead_letter_retention_seconds must be between 600 (10 minutes) and 2678400 (31 days)."
  }
}

# Functions

variable "api_ingress" {
  description = "Ingress of the HTTP API: ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB. IAM authentication is required in every case."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.api_ingress)
    error_message = "api_ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "subscriber_ingress" {
  description = "Ingress of the subscriber function. Pub/Sub push from the same project counts as internal traffic, so ALLOW_INTERNAL_ONLY is enough."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.subscriber_ingress)
    error_message = "subscriber_ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "api_min_instances" {
  description = "Instances of the API kept warm (0 scales to zero)."
  type        = number
  default     = 0

  validation {
    condition     = var.api_min_instances >= 0
    error_message = "api_min_instances must not be negative."
  }
}

variable "api_max_instances" {
  description = "Most instances of the API."
  type        = number
  default     = 20

  validation {
    condition     = var.api_max_instances >= 1 && var.api_max_instances >= var.api_min_instances
    error_message = "api_max_instances must be at least 1 and at least api_min_instances."
  }
}

variable "api_concurrency" {
  description = "Concurrent requests per API instance. Waits are mostly idle, so one instance holds many of them."
  type        = number
  default     = 1000

  validation {
    condition     = var.api_concurrency >= 1 && var.api_concurrency <= 1000
    error_message = "api_concurrency must be between 1 and 1000."
  }
}

variable "api_cpu" {
  description = "vCPUs of an API instance (at least 1 when api_concurrency is above 1)."
  type        = string
  default     = "1"

  validation {
    condition     = can(tonumber(var.api_cpu)) && (var.api_concurrency == 1 || tonumber(var.api_cpu) >= 1)
    error_message = "api_cpu must be a number, and at least 1 when api_concurrency is above 1."
  }
}

# Sized from `npm run bench:memory` on Node.js 24 (the deployed runtime), figures in
# infra/functions/main.tf: 243 MiB with a warm table client + 1,000 waits × 35.5 KiB = 278 MiB at
# the default api_concurrency; 512 MiB leaves 1.8 times that. Raise it with api_concurrency.
variable "api_memory" {
  description = "Memory of an API instance, e.g. 512Mi or 1Gi (512Mi holds api_concurrency = 1000 waits with 1.8x headroom)."
  type        = string
  default     = "512Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.api_memory))
    error_message = "api_memory must be a size such as 512Mi or 1Gi."
  }
}

variable "api_timeout_seconds" {
  description = "Request timeout of the API in seconds; longer than wait_timeout_max_seconds."
  type        = number
  default     = 330

  validation {
    condition     = var.api_timeout_seconds >= 30 && var.api_timeout_seconds <= 3600
    error_message = "api_timeout_seconds must be between 30 and 3600."
  }
}

variable "subscriber_min_instances" {
  description = "Instances of the subscriber kept warm (0 scales to zero)."
  type        = number
  default     = 0

  validation {
    condition     = var.subscriber_min_instances >= 0
    error_message = "subscriber_min_instances must not be negative."
  }
}

variable "subscriber_max_instances" {
  description = "Most instances of the subscriber; bounds the write rate into Bigtable."
  type        = number
  default     = 50

  validation {
    condition     = var.subscriber_max_instances >= 1 && var.subscriber_max_instances >= var.subscriber_min_instances
    error_message = "subscriber_max_instances must be at least 1 and at least subscriber_min_instances."
  }
}

variable "subscriber_concurrency" {
  description = "Concurrent push deliveries per subscriber instance."
  type        = number
  default     = 80

  validation {
    condition     = var.subscriber_concurrency >= 1 && var.subscriber_concurrency <= 1000
    error_message = "subscriber_concurrency must be between 1 and 1000."
  }
}

variable "subscriber_delivery" {
  description = "How events and dead letters reach the subscriber: \"push\" (Pub/Sub pushes each to the subscriber function, one billed request per event) or \"pull\" (an always-on Cloud Run service pulls them; cheaper past the load docs/capacity.md states). Switching updates the two subscriptions in place."
  type        = string
  default     = "push"

  validation {
    condition     = contains(["push", "pull"], var.subscriber_delivery)
    error_message = "subscriber_delivery must be push or pull."
  }
}

variable "subscriber_pull_min_instances" {
  description = "With subscriber_delivery = \"pull\": instances of the pull subscriber always running (at least 1)."
  type        = number
  default     = 1

  validation {
    condition     = var.subscriber_pull_min_instances >= 1 && floor(var.subscriber_pull_min_instances) == var.subscriber_pull_min_instances
    error_message = "subscriber_pull_min_instances must be a whole number of at least 1."
  }
}

variable "subscriber_pull_max_instances" {
  description = "With subscriber_delivery = \"pull\": most instances of the pull subscriber (Cloud Run adds them on CPU use)."
  type        = number
  default     = 10

  validation {
    condition     = var.subscriber_pull_max_instances >= var.subscriber_pull_min_instances
    error_message = "subscriber_pull_max_instances must be at least subscriber_pull_min_instances."
  }
}

variable "subscriber_timeout_seconds" {
  description = "Timeout of one delivery to the subscriber, in seconds; the push acknowledgement deadline is 30 s longer."
  type        = number
  default     = 60

  validation {
    condition     = var.subscriber_timeout_seconds >= 10 && var.subscriber_timeout_seconds <= 570
    error_message = "subscriber_timeout_seconds must be between 10 and 570 (the acknowledgement deadline, 30 s longer, is at most 600)."
  }
}

# Monitoring

variable "notification_channels" {
  description = "Notification channels every alert policy notifies (projects/PROJECT/notificationChannels/ID); empty creates the policies without notifying anyone."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "Every notification channel must be projects/PROJECT/notificationChannels/ID."
  }
}

variable "oldest_unacked_alert_seconds" {
  description = "Alert when the oldest unacknowledged event on the push subscription is older than this, in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.oldest_unacked_alert_seconds >= 60
    error_message = "oldest_unacked_alert_seconds must be at least 60."
  }
}

variable "error_ratio_alert_threshold" {
  description = "Alert when the share of 5xx answers of the API or the subscriber over 10 minutes is above this (a fraction, e.g. 0.05)."
  type        = number
  default     = 0.05

  validation {
    condition     = var.error_ratio_alert_threshold > 0 && var.error_ratio_alert_threshold < 1
    error_message = "error_ratio_alert_threshold must be between 0 and 1 (exclusive)."
  }
}

variable "source_root" {
  description = "Repository directory holding the build output dist/, whose dist/deploy/ is the functions' archive (run npm ci && npm run build first)."
  type        = string
  default     = "."
}

# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------

locals {
  # Every API the resources below call, enabled first (module.services). Secret Manager only when
  # a page-token secret is named.
  apis = concat([
    "artifactregistry.googleapis.com",     # images built for the functions
    "bigtable.googleapis.com",             # data API of the functions
    "bigtableadmin.googleapis.com",        # instance, table, app profile, IAM
    "cloudbuild.googleapis.com",           # function builds
    "cloudfunctions.googleapis.com",       # the functions
    "cloudresourcemanager.googleapis.com", # project IAM, custom role
    "iam.googleapis.com",                  # service accounts, custom role
    "iamcredentials.googleapis.com",       # impersonating the worker account (docs/deploy.md)
    "logging.googleapis.com",              # function and build logs, log-based metrics
    "monitoring.googleapis.com",           # alert policies, dashboard
    "pubsub.googleapis.com",               # topics, subscriptions
    "run.googleapis.com",                  # the functions' Cloud Run services and their IAM
    "cloudscheduler.googleapis.com",       # the sweeper's schedule
    "storage.googleapis.com",              # source bucket
  ], var.page_token_secret_id == null ? [] : ["secretmanager.googleapis.com"])

  # Names of the functions (and of their Cloud Run services), built from the prefix exactly as the
  # modules that create them build them. Monitoring takes these rather than the functions'
  # attributes: its log-based metrics then depend on nothing but the APIs and are created minutes
  # before the functions finish building (see infra/monitoring).
  api_service_name        = "${var.name_prefix}-operations"
  subscriber_service_name = var.subscriber_delivery == "pull" ? local.subscriber_pull_name : "${var.name_prefix}-subscriber"
  sweeper_service_name    = "${var.name_prefix}-sweeper"
  # The pull subscriber's Cloud Run service (subscriber_delivery = "pull"), which then does the
  # subscriber's work and writes its logs.
  subscriber_pull_name = "${var.name_prefix}-subscriber-pull"
  pull                 = var.subscriber_delivery == "pull"

  # The project's Pub/Sub service agent, created by infra/services before anything grants it a role.
  pubsub_service_agent = module.services.pubsub_service_agent

  # How long Pub/Sub waits for the subscriber's answer to a push: longer than the function's own
  # timeout, so that a delivery the subscriber completes just before its timeout is not also
  # redelivered (subscriber_timeout_seconds stays at most 570, so this stays within 600).
  push_ack_deadline_seconds = var.subscriber_timeout_seconds + 30
}

# No module below has a module-level depends_on: it would defer every data source inside the
# module whenever the API set changes (page_token_secret_id adds Secret Manager), so that later
# plans show grants and functions as replaced. Every module waits for the APIs through its
# project_id input instead, which module.services hands on only once the APIs have propagated;
# the value itself is known at plan time, so nothing is re-planned.
module "services" {
  source = "./infra/services"

  project_id = var.project_id
  services   = toset(local.apis)
}

module "identities" {
  source = "./infra/identities"

  project_id  = module.services.project_id
  name_prefix = var.name_prefix
}

module "bigtable" {
  source = "./infra/bigtable"

  project_id          = module.services.project_id
  instance_name       = var.bigtable_instance_name
  table_name          = var.bigtable_table_name
  zone                = coalesce(var.bigtable_zone, "${var.region}-b")
  storage_type        = var.bigtable_storage_type
  num_nodes           = var.bigtable_num_nodes
  autoscaling         = var.bigtable_autoscaling
  app_profile_id      = var.bigtable_app_profile_id
  retention_seconds   = var.retention_seconds
  deletion_protection = var.deletion_protection
  labels              = var.labels
  data_user_members   = { api = module.identities.api_member, subscriber = module.identities.subscriber_member }
}

module "pubsub" {
  source = "./infra/pubsub"

  project_id                    = module.services.project_id
  events_topic_name             = "${var.name_prefix}-events"
  notifications_topic_name      = "${var.name_prefix}-notifications"
  wakeups_topic_name            = "${var.name_prefix}-wakeups"
  dead_letter_topic_name        = "${var.name_prefix}-events-dead-letter"
  event_retention_seconds       = var.event_retention_seconds
  dead_letter_retention_seconds = var.dead_letter_retention_seconds
  labels                        = var.labels
  event_publishers              = merge({ for m in var.event_publisher_members : m => m }, { worker = module.identities.worker_member, api = module.identities.api_member })
  notification_publishers       = { api = module.identities.api_member, subscriber = module.identities.subscriber_member }
  notification_listeners        = { api = module.identities.api_member }
  wakeup_publishers             = { api = module.identities.api_member, subscriber = module.identities.subscriber_member }
  wakeup_listeners              = { api = module.identities.api_member }
  dead_letter_publishers        = { subscriber = module.identities.subscriber_member }
}

module "functions" {
  source = "./infra/functions"

  project_id                   = module.services.project_id
  region                       = var.region
  name_prefix                  = var.name_prefix
  labels                       = var.labels
  source_root                  = var.source_root
  build_service_account_id     = module.identities.build_service_account_id
  build_service_account_member = module.identities.build_member
  api_service_account          = module.identities.api_email
  subscriber_service_account   = module.identities.subscriber_email
  bigtable_instance            = module.bigtable.instance_name
  bigtable_table               = module.bigtable.table_name
  bigtable_app_profile         = module.bigtable.app_profile_id
  row_key_prefix               = var.row_key_prefix
  events_topic                 = module.pubsub.events_topic_name
  notifications_topic          = module.pubsub.notifications_topic_name
  wakeups_topic                = module.pubsub.wakeups_topic_name
  dead_letter_topic            = module.pubsub.dead_letter_topic_name
  retention_seconds            = var.retention_seconds
  wait_timeout_default_seconds = var.wait_timeout_default_seconds
  wait_timeout_max_seconds     = var.wait_timeout_max_seconds
  page_token_secret_id         = var.page_token_secret_id
  page_token_secret_version    = var.page_token_secret_version
  api_ingress                  = var.api_ingress
  api_min_instances            = var.api_min_instances
  api_max_instances            = var.api_max_instances
  api_concurrency              = var.api_concurrency
  api_cpu                      = var.api_cpu
  api_memory                   = var.api_memory
  api_timeout_seconds          = var.api_timeout_seconds
  api_invoker_members          = var.api_invoker_members
  subscriber_ingress           = var.subscriber_ingress
  subscriber_min_instances     = var.subscriber_min_instances
  subscriber_max_instances     = var.subscriber_max_instances
  subscriber_concurrency       = var.subscriber_concurrency
  subscriber_timeout_seconds   = var.subscriber_timeout_seconds
  subscriber_invoker_members   = { push = module.identities.push_member }
}

module "push_subscription" {
  source = "./infra/push-subscription"

  project_id                    = module.services.project_id
  name                          = "${var.name_prefix}-events-to-subscriber"
  events_topic_id               = module.pubsub.events_topic_id
  dead_letter_topic_id          = module.pubsub.dead_letter_topic_id
  push_endpoint                 = module.functions.subscriber_uri
  push_service_account_email    = module.identities.push_email
  push_service_account_id       = module.identities.push_service_account_id
  pubsub_service_agent          = local.pubsub_service_agent
  delivery                      = var.subscriber_delivery
  pull_subscriber_member        = local.pull ? module.identities.subscriber_member : null
  ack_deadline_seconds          = local.push_ack_deadline_seconds
  max_delivery_attempts         = var.max_delivery_attempts
  retry_minimum_backoff_seconds = var.retry_minimum_backoff_seconds
  retry_maximum_backoff_seconds = var.retry_maximum_backoff_seconds
  message_retention_seconds     = var.event_retention_seconds
  labels                        = var.labels
}

module "monitoring" {
  source = "./infra/monitoring"

  project_id                          = module.services.project_id
  name_prefix                         = var.name_prefix
  labels                              = var.labels
  api_service_name                    = local.api_service_name
  subscriber_service_name             = local.subscriber_service_name
  sweeper_service_name                = local.sweeper_service_name
  api_service_account_email           = module.identities.api_email
  notifications_topic_name            = module.pubsub.notifications_topic_name
  wakeups_topic_name                  = module.pubsub.wakeups_topic_name
  events_subscription_name            = module.push_subscription.name
  dead_letter_store_subscription_name = module.dead_letter_store.name
  notification_channels               = var.notification_channels
  oldest_unacked_threshold_seconds    = var.oldest_unacked_alert_seconds
  error_ratio_threshold               = var.error_ratio_alert_threshold
}

# Workers call the API to learn of a pending cancellation (GET answers x-lro-cancel-requested);
# they cannot open a cancellation listener of their own (that needs project-wide subscription
# rights), see docs/deploy.md.
resource "google_cloud_run_v2_service_iam_member" "worker_api_invoker" {
  project  = var.project_id
  location = var.region
  name     = module.functions.api_function_name
  role     = "roles/run.invoker"
  member   = module.identities.worker_member
}

module "dead_letter_store" {
  source = "./infra/dead-letter-store"

  project_id                 = module.services.project_id
  dead_letter_topic_id       = module.pubsub.dead_letter_topic_id
  dead_letter_topic_name     = module.pubsub.dead_letter_topic_name
  subscriber_uri             = module.functions.subscriber_uri
  push_service_account_email = module.identities.push_email
  delivery                   = var.subscriber_delivery
  pull_subscriber_member     = local.pull ? module.identities.subscriber_member : null
  ack_deadline_seconds       = local.push_ack_deadline_seconds
  labels                     = var.labels
}

# subscriber_delivery = "pull": the subscriber's work on an always-on service that pulls both
# subscriptions, from the subscriber function's build of the same archive.
module "subscriber_pull" {
  source = "./infra/subscriber-pull"
  count  = local.pull ? 1 : 0

  project_id          = module.services.project_id
  region              = var.region
  name                = local.subscriber_pull_name
  labels              = var.labels
  built_function_name = module.functions.subscriber_function_name
  source_object       = module.functions.source_object
  service_account     = module.identities.subscriber_email
  environment         = module.functions.subscriber_environment
  events_subscription = module.push_subscription.name
  min_instances       = var.subscriber_pull_min_instances
  max_instances       = var.subscriber_pull_max_instances
}

module "sweeper" {
  source = "./infra/sweeper"

  project_id               = module.services.project_id
  region                   = var.region
  name_prefix              = var.name_prefix
  labels                   = var.labels
  runtime                  = module.functions.runtime
  source_bucket            = module.functions.source_bucket
  source_object            = module.functions.source_object
  build_service_account_id = module.functions.build_service_account_id
  docker_repository        = module.functions.docker_repository
  bigtable_instance        = module.bigtable.instance_name
  bigtable_table           = module.bigtable.table_name
  bigtable_app_profile     = module.bigtable.app_profile_id
  row_key_prefix           = var.row_key_prefix
  events_topic             = module.pubsub.events_topic_name
  notifications_topic      = module.pubsub.notifications_topic_name
  wakeups_topic            = module.pubsub.wakeups_topic_name
  dead_letter_topic        = module.pubsub.dead_letter_topic_name
  retention_seconds        = var.retention_seconds
}

# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------

output "api_url" {
  description = "Base URL of the HTTP API (append /v1/operations). Callers send an ID token in Authorization: Bearer."
  value       = module.functions.api_uri
}

output "api_function" {
  description = "Name of the API function."
  value       = module.functions.api_function_name
}

output "subscriber_function" {
  description = "Name of the subscriber function."
  value       = module.functions.subscriber_function_name
}

output "sweeper_function" {
  description = "Name of the sweeper function, called every minute by Cloud Scheduler."
  value       = module.sweeper.function_name
}

output "sweeper_service_account" {
  description = "Runtime service account of the sweeper function."
  value       = module.sweeper.service_account
}

output "events_topic" {
  description = "Topic workers publish events to (LRO_EVENTS_TOPIC)."
  value       = module.pubsub.events_topic_name
}

output "notifications_topic" {
  description = "Topic announcing every change of an operation and every cancellation request (LRO_NOTIFICATIONS_TOPIC)."
  value       = module.pubsub.notifications_topic_name
}

output "wakeups_topic" {
  description = "Topic announcing every ended operation as a bodiless wake-up (LRO_WAKEUPS_TOPIC)."
  value       = module.pubsub.wakeups_topic_name
}

output "dead_letter_topic" {
  description = "Topic receiving events that could not be applied (LRO_DEAD_LETTER_TOPIC)."
  value       = module.pubsub.dead_letter_topic_name
}

output "dead_letter_subscription" {
  description = "Subscription that keeps every dead-lettered event for inspection and replay."
  value       = module.pubsub.dead_letter_subscription_name
}

output "push_subscription" {
  description = "Subscription delivering events to the subscriber: pushed to the subscriber function, or pulled by the pull subscriber (subscriber_delivery)."
  value       = module.push_subscription.name
}

output "subscriber_pull_service" {
  description = "Cloud Run service of the pull subscriber (subscriber_delivery = \"pull\"); null in push mode."
  value       = local.pull ? module.subscriber_pull[0].name : null
}

output "bigtable_instance" {
  description = "Bigtable instance ID (LRO_BIGTABLE_INSTANCE)."
  value       = module.bigtable.instance_name
}

output "bigtable_table" {
  description = "Bigtable table name (LRO_BIGTABLE_TABLE)."
  value       = module.bigtable.table_name
}

output "bigtable_app_profile" {
  description = "Bigtable app profile ID (LRO_BIGTABLE_APP_PROFILE)."
  value       = module.bigtable.app_profile_id
}

output "api_service_account" {
  description = "Runtime service account of the API function."
  value       = module.identities.api_email
}

output "subscriber_service_account" {
  description = "Runtime service account of the subscriber function."
  value       = module.identities.subscriber_email
}

output "push_service_account" {
  description = "Service account whose OIDC token authenticates Pub/Sub push deliveries to the subscriber."
  value       = module.identities.push_email
}

output "worker_service_account" {
  description = "Service account for workers: publishes to the events topic and may call the API (to check for a pending cancellation)."
  value       = module.identities.worker_email
}

output "build_service_account" {
  description = "Service account Cloud Build uses to build the functions."
  value       = module.identities.build_email
}

output "source_bucket" {
  description = "Bucket holding the uploaded function source archives."
  value       = module.functions.source_bucket
}

output "dashboard_url" {
  description = "Cloud Monitoring dashboard of the service (events, apply latency, operations, dead letters, instances, backlog)."
  value       = module.monitoring.dashboard_url
}

output "alert_policies" {
  description = "Alert policies of the service (dead letters, events backlog, dead letters not stored, 5xx ratio, sweeper)."
  value       = module.monitoring.alert_policies
}
