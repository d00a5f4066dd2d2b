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
