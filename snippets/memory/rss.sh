# Every second, three samples; leave out the last two numbers to sample every 10 s until Ctrl-C.
python rss.py "$MASTER_PID" 1 3
