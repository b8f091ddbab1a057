"""Developer tools of the course itself (not for learners): run with `python -m factorlab.dev.<tool>`.

    notebooks   execute notebooks in place, so that their stored outputs are fresh
"""
