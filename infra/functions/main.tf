# The two Cloud Functions (2nd gen) built from one archive of the build output, and what their
# builds use: the source bucket, which the build account may read, and the image repository, which
# it may write to (the sweeper, infra/sweeper, builds from the same archive into the same
# repository).
#
#   operations  HTTP API (entry point `operations`), callers authenticate with an ID token
#   subscriber  target of the events topic's push subscription (entry point `subscriber`, a
#               CloudEvent function; the functions framework converts the push body)
#
# The archive is the deploy artifact that `npm run build` writes to dist/deploy/
# (scripts/build-deploy.ts): its own package.json and package-lock.json, whose only dependency is
# the functions framework, one bundle of the functions with its source map, and the proto files and
# console scripts the bundle reads by path (Cloud Build runs `npm ci` with devDependencies omitted
# and runs no build script). Its name carries the content hash, so a new build redeploys both
# functions and an unchanged one does not.
#
# Configuration is passed only through environment variables, named as in shared/service/runtime/config.ts.
# PORT is set by the platform; the emulator variables are never set here.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
    archive = {
      source = "hashicorp/archive"
    }
    time = {
      source = "hashicorp/time"
    }
  }
}

variable "project_id" {
  description = "Project of the functions."
  type        = string
}

variable "region" {
  description = "Region of the functions and the source bucket."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the function and bucket names."
  type        = string
}

variable "labels" {
  description = "Labels of the functions and the bucket."
  type        = map(string)
  default     = {}
}

variable "source_root" {
  description = "Repository directory holding the build output dist/ (the archive is dist/deploy/)."
  type        = string
}

variable "build_service_account_id" {
  description = "Full resource name of the service account Cloud Build runs as."
  type        = string
}

variable "build_service_account_member" {
  description = "IAM member of that service account, granted read access to the source bucket and write access to the image repository."
  type        = string
}

variable "api_service_account" {
  description = "Email of the API runtime service account."
  type        = string
}

variable "subscriber_service_account" {
  description = "Email of the subscriber runtime service account."
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
  description = "Name of the notifications topic."
  type        = string
}

variable "wakeups_topic" {
  description = "Name of the wake-up topic."
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

variable "wait_timeout_default_seconds" {
  description = "Wait timeout when the request gives none, in seconds."
  type        = number
}

variable "wait_timeout_max_seconds" {
  description = "Cap of a requested wait timeout, in seconds."
  type        = number

  validation {
    condition     = var.wait_timeout_max_seconds + 10 <= var.api_timeout_seconds
    error_message = "wait_timeout_max_seconds must be at least 10 seconds below api_timeout_seconds."
  }
}

variable "page_token_secret_id" {
  description = "Secret Manager secret whose version page_token_secret_version becomes LRO_PAGE_TOKEN_KEY; null to derive the key."
  type        = string
  default     = null
}

variable "page_token_secret_version" {
  description = "Version number of the page-token secret to mount (pinned: a secret in an environment variable is read at instance start)."
  type        = string
  default     = null
}

variable "api_ingress" {
  description = "Ingress setting of the API function."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.api_ingress)
    error_message = "api_ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "api_min_instances" {
  description = "Instances of the API kept warm."
  type        = number
  default     = 0
}

variable "api_max_instances" {
  description = "Most instances of the API."
  type        = number
  default     = 20
}

variable "api_concurrency" {
  description = "Concurrent requests per API instance."
  type        = number
  default     = 1000
}

variable "api_cpu" {
  description = "vCPUs of an API instance."
  type        = string
  default     = "1"
}

variable "api_memory" {
  description = "Memory of an API instance."
  type        = string
  default     = "512Mi"
}

variable "api_timeout_seconds" {
  description = "Request timeout of the API, in seconds."
  type        = number
  default     = 330
}

variable "api_invoker_members" {
  description = "Principals allowed to call the API."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.api_invoker_members : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "The API is never public: allUsers and allAuthenticatedUsers are refused."
  }
}

variable "subscriber_ingress" {
  description = "Ingress setting of the subscriber function."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.subscriber_ingress)
    error_message = "subscriber_ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "subscriber_min_instances" {
  description = "Instances of the subscriber kept warm."
  type        = number
  default     = 0
}

variable "subscriber_max_instances" {
  description = "Most instances of the subscriber."
  type        = number
  default     = 50
}

variable "subscriber_concurrency" {
  description = "Concurrent deliveries per subscriber instance."
  type        = number
  default     = 80
}

variable "subscriber_timeout_seconds" {
  description = "Timeout of one delivery, in seconds."
  type        = number
  default     = 60
}

variable "iam_propagation_seconds" {
  description = "Wait after the build account's grants and after the subscriber's invoker grants, in seconds, before anything relies on them (Google: access changes typically take 2 minutes, sometimes 7 or more)."
  type        = number
  default     = 120
}

variable "subscriber_invoker_members" {
  description = "Principals allowed to invoke the subscriber, keyed by a static name (the push service account)."
  type        = map(string)
}

locals {
  # Node.js 24: supported until 2028-10-31 (Node.js 22 only until 2027-10-31, Node.js 20 is
  # decommissioned since 2026-10-30); dates and their source in infra/runtime-support.json, which
  # the offline checks compare with today. The test suite also runs under this Node major.
  runtime = "nodejs24"

  # Memory (RSS in MiB, settled = lowest of five samples a second apart; emulators).
  #   Archive of compiled modules with the repository's dependencies, as deployed until the bundle:
  #               API holding 1,000 waits 313-332 on Node.js 24 (quiet 2-core machine, several
  #               runs; the 278 once written here was too low), so 512Mi was 1.56 times that, not 1.8.
  #   The bundle (dist/deploy), `LRO_FUNCTION_SOURCE=deploy npm run bench:memory`, Node.js 24.22,
  #   quiet 2-core machine (2026-12-07, two runs). In a container Node.js gives V8 a heap limit of
  #   about half the instance's memory (259 MiB in a 512 MiB cgroup, measured), so the figures
  #   that size an instance are those under that limit (MEMORY_HEAP_MIB=256, one run); without it
  #   (an unconstrained machine) V8 collects later and RSS holds more garbage:
  #   API         idle 142; after 1,000 creates 259; holding 1,000 waits 280 (unconstrained: idle
  #               135, 275-288, 355-361). At api_concurrency = 1,000 the default api_memory of
  #               512Mi is 1.83 times the 280 (1.42 times even the unconstrained 361).
  #   subscriber  idle 131; peak 272 with 80 push deliveries in flight (subscriber_concurrency)
  #               (unconstrained: idle 131-133, peak 362-369). 768Mi is 2.8 times the 272 (its
  #               own heap limit would be about 384). The old archive's figure was idle 180, peak
  #               395 (Node.js 24).
  subscriber_memory = "768Mi"

  # Files of the deployed archive, relative to artifact_root: the manifest and lock file of the
  # artifact, the bundle with its lazily loaded chunks and static protobuf modules, source maps and
  # license notices, the proto files google-gax and Bigtable read from ../../build/protos and
  # ../../protos relative to it, and the web console's page, style sheet, icon and scripts.
  artifact_root = "${var.source_root}/dist/deploy"
  source_patterns = [
    "package.json",
    "package-lock.json",
    "dist/functions/*.js",
    "dist/functions/*.js.map",
    "dist/functions/*.LEGAL.txt",
    "dist/functions/static-protos/*.cjs",
    "dist/functions/static-protos/*.LEGAL.txt",
    "build/protos/**/*.json",
    "build/protos/**/*.proto",
    "protos/**/*.proto",
    "console-app/**/*.js",
    "console-app/*.html",
    "console-app/*.css",
    "console-app/*.svg",
  ]
  source_files = sort(distinct(flatten([for p in local.source_patterns : tolist(fileset(local.artifact_root, p))])))

  # Read by both functions.
  common_environment = {
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

  # Only the API waits.
  api_environment = {
    LRO_WAIT_TIMEOUT_DEFAULT = "${var.wait_timeout_default_seconds}s"
    LRO_WAIT_TIMEOUT_MAX     = "${var.wait_timeout_max_seconds}s"
    LRO_WAIT_NOTIFICATIONS   = "true"
  }

  build_environment = {
    # Install production dependencies only and run no package.json script: dist/ is prebuilt.
    NODE_ENV                = "production"
    GOOGLE_NODE_RUN_SCRIPTS = ""
  }

  # The page-token secret as { project, id }: from projects/PROJECT/secrets/ID (the secret may live
  # in another project), or an ID alone in this project; none when null.
  page_token_secret_parts = var.page_token_secret_id == null ? [] : split("/", var.page_token_secret_id)
  page_token_secret = var.page_token_secret_id == null ? [] : [{
    project = length(local.page_token_secret_parts) == 4 ? local.page_token_secret_parts[1] : var.project_id
    id      = element(local.page_token_secret_parts, length(local.page_token_secret_parts) - 1)
  }]
}

data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.root}/.terraform/tmp/${var.name_prefix}-functions-source.zip"

  dynamic "source" {
    for_each = toset(local.source_files)
    content {
      filename = source.value
      content  = file("${local.artifact_root}/${source.value}")
    }
  }
}

resource "google_storage_bucket" "source" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-src"
  location                    = var.region
  labels                      = var.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  # No age-based lifecycle rule: it would delete the archive the functions were deployed from, and
  # every later plan would upload it again. Old archives do not pile up: a new build changes the
  # object's name, and Terraform deletes the old object when it replaces it.
}

# The build reads the archive from this bucket.
resource "google_storage_bucket_iam_member" "build_source_viewer" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = var.build_service_account_member
}

# The functions' images, pushed by their builds (docker_repository of each function) instead of
# the shared gcf-artifacts repository, so that the build account may write here and nowhere else.
resource "google_artifact_registry_repository" "functions" {
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name_prefix}-functions"
  format        = "DOCKER"
  description   = "Images of the long-running operations functions, built by Cloud Build."
  labels        = var.labels
}

resource "google_artifact_registry_repository_iam_member" "build_writer" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = var.build_service_account_member
}

# A build started before these grants are effective fails. The functions name their build account
# through this wait's triggers, so they are created only after it; the account's name is the same
# value as before, so a repeated wait (when a grant is replaced) changes no function.
resource "time_sleep" "build_grant_propagation" {
  create_duration = "${var.iam_propagation_seconds}s"

  triggers = {
    service_account = var.build_service_account_id
    source_viewer   = google_storage_bucket_iam_member.build_source_viewer.id
    image_writer    = google_artifact_registry_repository_iam_member.build_writer.id
  }
}

resource "google_storage_bucket_object" "source" {
  bucket       = google_storage_bucket.source.name
  name         = "functions-${data.archive_file.source.output_md5}.zip"
  source       = data.archive_file.source.output_path
  content_type = "application/zip"

  lifecycle {
    precondition {
      condition     = contains(local.source_files, "dist/functions/index.js")
      error_message = "dist/deploy/dist/functions/index.js is missing under source_root: run `npm ci && npm run build` first."
    }
  }
}

resource "google_cloudfunctions2_function" "operations" {
  project     = var.project_id
  location    = var.region
  name        = "${var.name_prefix}-operations"
  description = "google.longrunning HTTP API: get, list, wait, cancel, delete and create operations."
  labels      = var.labels

  build_config {
    runtime               = local.runtime
    entry_point           = "operations"
    service_account       = time_sleep.build_grant_propagation.triggers["service_account"]
    docker_repository     = google_artifact_registry_repository.functions.id
    environment_variables = local.build_environment

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = var.api_service_account
    ingress_settings                 = var.api_ingress
    min_instance_count               = var.api_min_instances
    max_instance_count               = var.api_max_instances
    max_instance_request_concurrency = var.api_concurrency
    available_cpu                    = var.api_cpu
    available_memory                 = var.api_memory
    timeout_seconds                  = var.api_timeout_seconds
    all_traffic_on_latest_revision   = true
    environment_variables            = merge(local.common_environment, local.api_environment)

    dynamic "secret_environment_variables" {
      for_each = local.page_token_secret
      content {
        key        = "LRO_PAGE_TOKEN_KEY"
        project_id = secret_environment_variables.value.project
        secret     = secret_environment_variables.value.id
        version    = var.page_token_secret_version
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.api_page_token]
}

resource "google_cloudfunctions2_function" "subscriber" {
  project     = var.project_id
  location    = var.region
  name        = "${var.name_prefix}-subscriber"
  description = "Applies worker events from the events topic to Bigtable and publishes notifications."
  labels      = var.labels

  build_config {
    runtime               = local.runtime
    entry_point           = "subscriber"
    service_account       = time_sleep.build_grant_propagation.triggers["service_account"]
    docker_repository     = google_artifact_registry_repository.functions.id
    environment_variables = local.build_environment

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = var.subscriber_service_account
    ingress_settings                 = var.subscriber_ingress
    min_instance_count               = var.subscriber_min_instances
    max_instance_count               = var.subscriber_max_instances
    max_instance_request_concurrency = var.subscriber_concurrency
    available_cpu                    = "1"
    available_memory                 = local.subscriber_memory
    timeout_seconds                  = var.subscriber_timeout_seconds
    all_traffic_on_latest_revision   = true
    environment_variables            = local.common_environment
  }
}

resource "google_secret_manager_secret_iam_member" "api_page_token" {
  for_each = { for s in local.page_token_secret : "${s.project}/${s.id}" => s }

  project   = each.value.project
  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${var.api_service_account}"
}

# Invocation rights of a 2nd gen function live on its Cloud Run service, which has the
# function's name. No public member is
# ever granted: the API's callers come from a variable that refuses allUsers and
# allAuthenticatedUsers, and only the push service account may invoke the subscriber.
resource "google_cloud_run_v2_service_iam_member" "api_invoker" {
  for_each = toset(var.api_invoker_members)

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.operations.name
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_cloud_run_v2_service_iam_member" "subscriber_invoker" {
  for_each = var.subscriber_invoker_members

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.subscriber.name
  role     = "roles/run.invoker"
  member   = each.value
}

# Until the push account's invoker grant is effective, deliveries are refused (403) and come back
# later. The subscriber's URL, which the push subscription is built from, is available only after
# this wait.
resource "time_sleep" "subscriber_invoker_propagation" {
  create_duration = "${var.iam_propagation_seconds}s"

  triggers = {
    grants = join(",", sort([for g in google_cloud_run_v2_service_iam_member.subscriber_invoker : g.id]))
  }
}

output "api_uri" {
  description = "URL of the API function."
  value       = google_cloudfunctions2_function.operations.service_config[0].uri
}

output "api_function_name" {
  description = "Name of the API function."
  value       = google_cloudfunctions2_function.operations.name
}

output "subscriber_uri" {
  description = "URL of the subscriber function (base of the push endpoint), available once its invokers' grants are effective."
  value       = google_cloudfunctions2_function.subscriber.service_config[0].uri
  depends_on  = [time_sleep.subscriber_invoker_propagation]
}

output "subscriber_environment" {
  description = "Environment of the subscriber function (the pull subscriber runs with it too)."
  value       = local.common_environment
}

output "subscriber_function_name" {
  description = "Name of the subscriber function."
  value       = google_cloudfunctions2_function.subscriber.name
}

output "runtime" {
  description = "Node.js runtime of the functions."
  value       = local.runtime
}

output "source_bucket" {
  description = "Bucket holding the source archives."
  value       = google_storage_bucket.source.name
}

output "build_service_account_id" {
  description = "Full resource name of the build service account, available once its grants on the bucket and the repository are effective."
  value       = time_sleep.build_grant_propagation.triggers["service_account"]
}

output "docker_repository" {
  description = "Artifact Registry repository the function builds push their images to (projects/P/locations/L/repositories/R)."
  value       = google_artifact_registry_repository.functions.id
}

output "source_object" {
  description = "Object name of the deployed source archive."
  value       = google_storage_bucket_object.source.name
}
