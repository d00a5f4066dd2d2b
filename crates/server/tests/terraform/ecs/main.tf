variable "image" { type = string }
variable "port" { type = number }
resource "aws_ecs_cluster" "apps" {
  name = "tf-apps"
  setting {
    name  = "containerInsights"
    value = "disabled"
  }
  tags = {
    team = "platform"
  }
}

resource "aws_cloudwatch_log_group" "web" {
  name = "/ecs/tf-web"
}

resource "aws_ecs_task_definition" "web" {
  family                   = "tf-web"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = "256"
  memory                   = "512"
  container_definitions = jsonencode([{
    name       = "web"
    image      = var.image
    essential  = true
    entryPoint = ["/bin/sh", "-c"]
    command    = ["exec httpd -f -p ${var.port} -h /www"]
    portMappings = [{ containerPort = var.port, hostPort = var.port, protocol = "tcp" }]
    environment  = [{ name = "GREETING", value = "hi" }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.web.name
        "awslogs-region"        = "eu-west-1"
        "awslogs-stream-prefix" = "ecs"
      }
    }
  }])
  tags = {
    app = "web"
  }
}

resource "aws_ecs_service" "web" {
  name            = "tf-web"
  cluster         = aws_ecs_cluster.apps.id
  task_definition = aws_ecs_task_definition.web.arn
  desired_count   = 1
  launch_type     = "FARGATE"
  network_configuration {
    subnets          = ["subnet-0abc1234"]
    security_groups  = ["sg-0abc1234"]
    assign_public_ip = false
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = false
  }
  wait_for_steady_state = true
  tags = {
    app = "web"
  }
}
