"""The demo job of ``tml-optim train``: a multi-task ranking model, its synthetic data and trainer."""
