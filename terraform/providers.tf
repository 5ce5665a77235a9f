# The provider block is the same for AWS, LocalStack and the embedded emulator:
# endpoints and credentials come from the environment (AWS_ENDPOINT_URL, AWS_PROFILE, ...).
provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}
