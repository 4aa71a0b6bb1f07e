# The same JSON file, named in the config file instead of on the command line
logconfig_json = "logging.json"
