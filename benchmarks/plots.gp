# SPDX-License-Identifier: GPL-2.0
# Plots for one timing mode from analyze.py's plots/cps_MODE.dat:
#   gnuplot -e "dat='cps_icount.dat'; ovh='overhead_icount.dat'; \
#               out='plots/icount'; ttl='icount'; term='pngcairo'" benchmarks/plots.gp
# writes out-cps.png (median rate, bars min..max, ratio to the baseline
# above; columns: label median min max ratio) and, when ovh is given,
# out-overhead.png (connection set-up cost, 1/cps - 1/keep-alive rate;
# columns: label overhead_us).

if (!exists("term")) term = "pngcairo"
if (term eq "pngcairo") {
	set terminal pngcairo size 1100,560 font "sans,10" noenhanced
} else {
	set terminal png size 1100,560 noenhanced
}

set style fill solid 0.6 border -1
set boxwidth 0.6
set grid ytics
set xtics rotate by -35 nomirror
set key off
set yrange [0:*]
set offsets 0.5, 0.5, 0, 0
set bmargin 7

set output out . "-cps.png"
set title "Connections/s by configuration (" . ttl . "): median, bar = min..max; label = ratio to its baseline (shared, nginx, haproxy)"
set ylabel "connections (or requests) per second"
plot dat using 0:2:xtic(1) with boxes lc rgb "#4a7ebb", \
     dat using 0:2:3:4 with yerrorbars lc rgb "black" pt 0, \
     dat using 0:4:($5 > 0 ? sprintf("x%.2f", $5) : "") with labels offset 0,0.8

if (exists("ovh")) {
	set output out . "-overhead.png"
	set title "Connection set-up overhead (" . ttl . "): 1/cps - 1/keep-alive rate"
	set ylabel "µs per connection"
	plot ovh using 0:2:xtic(1) with boxes lc rgb "#bb4a4a", \
	     ovh using 0:2:(sprintf("%.1f", $2)) with labels offset 0,0.8
}
