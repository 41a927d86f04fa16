"""Replaying searches against recorded trainings (the ``--backend replay`` of ``bench search``)."""
