"""Classification of reports into the 6+2+N categories, personal-data detection and near-duplicates.

Everything here is a pure function of its inputs and the loaded taxonomy; other domains call it only
through ``service.classify.service``.
"""
