from prometheus_client import multiprocess


def child_exit(server, worker):
    # A worker has exited (stopped, restarted or killed): drop its "live" gauge values.
    multiprocess.mark_process_dead(worker.pid)
