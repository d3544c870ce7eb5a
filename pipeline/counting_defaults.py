"""Default confirmation times of tracking and zones, in seconds of video.

Kept apart from `pipeline.analytics` (which imports numpy) so that the command line's help
can show them without loading it. Chosen from the shared clips (README, Tracking): real
objects there stay in view for 2 s or more, the detector's short-lived false boxes last
0.3 s at most, and the longest edge flicker of a zone's occupant 0.2 s.
"""

CONFIRM_SECONDS = 1.0  # a new track is an object once matched this long without a miss
ZONE_MIN_SECONDS = 0.5  # a track enters or leaves a zone once on the new side this long
