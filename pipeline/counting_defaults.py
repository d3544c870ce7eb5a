"""Default confirmation times of tracking and zones, in seconds of video.

Kept apart from `pipeline.analytics` (which imports numpy) so that the command line's help
can show them without loading it. Chosen from the shared clips and the synthetic clip with
person-vehicle-bike-detection-2000 (README, Tracking): the detector's short-lived false boxes
there are matched for 0.32 s at most (the car clip's frame-wide "vehicle" at its end), while
every real object is matched for well over a second; a confirmation time from 0.3 to 0.8 s
gives the counts seen by eye on all three clips, 1.0 s loses one of the synthetic clip's two
persons that cross each other. 0.7 s leaves twice the false boxes' time as margin.
"""

CONFIRM_SECONDS = 0.7  # a new track is an object once matched this long
ZONE_MIN_SECONDS = 0.5  # a track enters or leaves a zone once on the new side this long
MAX_SECONDS = 3600  # either setting is below this (an hour: anything longer is a typo)
