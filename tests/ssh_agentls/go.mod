module agentls

go 1.21
