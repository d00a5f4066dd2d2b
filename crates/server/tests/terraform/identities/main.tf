# Identities: a user in a group, with an access key, an inline policy and an AWS managed policy
# attached; the group with its own inline policy.

resource "aws_iam_user" "alice" {
  name = "tf-alice"
  path = "/dev/"
  tags = { Team = "blue" }
}

resource "aws_iam_group" "developers" {
  name = "tf-developers"
}

resource "aws_iam_group_membership" "developers" {
  name  = "tf-developers-membership"
  group = aws_iam_group.developers.name
  users = [aws_iam_user.alice.name]
}

resource "aws_iam_group_policy" "developers_logs" {
  name  = "logs-read"
  group = aws_iam_group.developers.name
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["logs:Describe*", "logs:Get*"], Resource = "*" }]
  })
}

# Non-exclusive membership, from the user's side.
resource "aws_iam_group" "readers" {
  name = "tf-readers"
  path = "/teams/"
}

resource "aws_iam_user_group_membership" "alice" {
  user   = aws_iam_user.alice.name
  groups = [aws_iam_group.readers.name]
}

resource "aws_iam_group_policy_attachment" "readers_s3" {
  group      = aws_iam_group.readers.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
}

resource "aws_iam_access_key" "alice" {
  user = aws_iam_user.alice.name
}

resource "aws_iam_user_policy" "alice_iam_read" {
  name = "iam-read"
  user = aws_iam_user.alice.name
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["iam:Get*", "iam:List*"], Resource = "*" }]
  })
}

resource "aws_iam_user_policy_attachment" "alice_s3_read" {
  user       = aws_iam_user.alice.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
}

output "access_key_id" { value = aws_iam_access_key.alice.id }
