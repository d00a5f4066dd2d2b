terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.100.0"
    }
  }
}

variable "endpoint" { type = string }

provider "aws" {
  region                      = "eu-west-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true
  endpoints {
    codecommit = var.endpoint
    sts        = var.endpoint
  }
}

resource "aws_codecommit_repository" "repo" {
  repository_name = "tf-repo"
  description     = "managed by terraform"
  default_branch  = "main"
  tags = {
    env   = "test"
    owner = "ci"
  }
}

output "clone_url_http" {
  value = aws_codecommit_repository.repo.clone_url_http
}
