kubernetes-validate --strict --kubernetes-version 1.30.0 job.yaml deployment.yaml
