terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # State lives in S3 for AWS deployments: `terraform init -backend-config=backend.hcl`
  # (see backend.hcl.example). Runs against the emulator replace this with a local
  # backend in a generated override file, so no state ever lands in the repository.
  backend "s3" {}
}
