"""What operators can watch: Prometheus metrics (:mod:`.registry`), the counts that worker
processes carry back to the server (:mod:`.relay`), and the ids in scope for log lines
(:mod:`.context`, :mod:`.logs`).

This package sits at the bottom of the layers, so that the fax engine, the converter, the
dispatcher and the gateway can all count where things happen.
"""
