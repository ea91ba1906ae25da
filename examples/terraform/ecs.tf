# The AWS half of the example: the ECR repository the image is pushed to, and one ECS
# Fargate service per CPU architecture running the same multi-arch image (its digest, so a
# new build rolls both services). `scripts/demo_terraform.sh` runs main.tf without this file
# against the test world's ECR look-alike (hashicorp/aws cannot be installed there).

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "subnet_ids" {
  description = "Subnets of an existing VPC for the Fargate tasks (with a route to ECR: a NAT gateway, VPC endpoints or public IPs)"
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups for the tasks (allow inbound TCP 8080 from where the app is used)"
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give the tasks public IPs (public subnets without a NAT gateway need it to pull from ECR)"
  type        = bool
  default     = false
}

provider "aws" {
  region = var.region
}

resource "aws_ecr_repository" "app" {
  name                 = "multiarch-example-app"
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
}

locals {
  repository = aws_ecr_repository.app.repository_url
  # runtimePlatform.cpuArchitecture of each service: Graviton and Intel.
  architectures = {
    arm64 = "ARM64"
    x86   = "X86_64"
  }
}

# The task execution role: Fargate pulls the image from the private repository and writes
# the logs with it.
resource "aws_iam_role" "execution" {
  name_prefix = "multiarch-example-exec-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_cloudwatch_log_group" "app" {
  name              = "/ecs/multiarch-example"
  retention_in_days = 7
}

resource "aws_ecs_task_definition" "app" {
  for_each                 = local.architectures
  family                   = "multiarch-example-${each.key}"
  cpu                      = "256"
  memory                   = "512"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  execution_role_arn       = aws_iam_role.execution.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = each.value
  }
  container_definitions = jsonencode([{
    name         = "app"
    image        = multiarch_image.app.ref
    essential    = true
    portMappings = [{ containerPort = 8080, protocol = "tcp" }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.app.name
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
  }])
  depends_on = [aws_iam_role_policy_attachment.execution]
}

resource "aws_ecs_cluster" "app" {
  name = "multiarch-example"
}

resource "aws_ecs_service" "app" {
  for_each        = local.architectures
  name            = "app-${each.key}"
  cluster         = aws_ecs_cluster.app.id
  task_definition = aws_ecs_task_definition.app[each.key].arn
  desired_count   = 1
  launch_type     = "FARGATE"
  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = var.assign_public_ip
  }
}

output "services" {
  value = { for k, s in aws_ecs_service.app : k => s.name }
}
