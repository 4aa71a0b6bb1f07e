kubernetes-validate --strict --kubernetes-version 1.30.0 deployment.yaml service.yaml hpa.yaml pdb.yaml
