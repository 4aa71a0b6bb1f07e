"""Simulated users for main.py: three cheap requests for every CPU-heavy one."""

import gevent
from locust import FastHttpUser, constant, events, task


@events.init.add_listener
def start_the_clock(**_kwargs: object) -> None:
    # Locust arms --run-time on gevent's event-loop clock, which stands still while Locust
    # starts up. After a slow start (a busy CI machine) a short run would end early, even
    # before the first request. Bring the clock up to date just before the run starts.
    gevent.get_hub().loop.update_now()


class ApiUser(FastHttpUser):
    # No think time: a user sends its next request as soon as the last one is answered, so
    # the server sets the pace (a capacity test). To model real visitors, wait between requests.
    wait_time = constant(0)

    @task(3)
    def hello(self) -> None:
        self.client.get("/")

    @task(1)
    def work(self) -> None:
        self.client.get("/work")
