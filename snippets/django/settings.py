import os

# A one-folder project: DJANGO_SETTINGS_MODULE is "settings".
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-demo-key-set-DJANGO_SECRET_KEY")
DEBUG = False
TIME_ZONE = "UTC"  # Django sets the process time zone; keep server logs in UTC
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["rest_framework", "channels"]
ROOT_URLCONF = "urls"
ASGI_APPLICATION = "asgi.application"
DATABASES: dict = {}  # the demo needs no database

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}

# In-memory: each worker process has its own layer, invisible to the others.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
if os.environ.get("CHANNEL_LAYER") == "redis":  # one layer that every worker shares, in Redis
    CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")]},
    }}
