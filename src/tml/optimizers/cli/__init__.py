"""The ``tml-optim`` command line: validate, show, plot, schema, list and the demo training job.

One module per concept: ``main`` (arguments and output), ``loading`` (finding the config in a file),
``suggestions`` (nearest valid key for a typo), ``groups`` (each param group's schedule), ``summary``
(schedule landmarks), ``horizon`` (the LR at a checkpoint's step, before and after), ``plotting``,
``schema``, ``catalog`` (``list``), ``docgen`` (the config reference), ``model`` / ``training`` /
``progress`` / ``checkpoint`` (the demo job).
"""
