# SPDX-License-Identifier: GPL-2.0
# The locality plot from locality_report.py's scale-SWITCH.dat:
#   gnuplot -e "dat='scale-10000.dat'; out='scale-10000.png'; sw='10000'; n=7" \
#           benchmarks/locality.gp
# Server<->server kernel cache-line transfers per connection against the
# number of server CPUs, one line per configuration (column 1: server
# CPUs; columns 2..n+1: the configurations, named in the header line).

set terminal pngcairo size 900,560 font "sans,10" noenhanced
set output out
set title "Cross-CPU cache-line transfers per connection (server<->server, kernel), locality meter, switch=" . sw
set xlabel "server CPUs"
set ylabel "transfers per connection"
set logscale x 2
set xrange [1.8:9]
set xtics ("2" 2, "4" 4, "8" 8)
set grid
set yrange [0:*]
set key outside right top
set key autotitle columnheader
# one colour each for up to 12 lines; from the 9th on, dashed
colors = "#1f77b4 #d62728 #2ca02c #ff7f0e #9467bd #8c564b #e377c2 #7f7f7f #17becf #bcbd22 #000000 #aec7e8"
plot for [i=2:(n < 8 ? n : 8)+1] dat using 1:i with linespoints lw 2 pt 7 \
	lc rgb word(colors, i - 1), \
     for [i=10:n+1] dat using 1:i with linespoints lw 2 pt 7 dt 2 \
	lc rgb word(colors, (i - 2) % 12 + 1)
